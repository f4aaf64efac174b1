"""A batch on a fleet: trials sent to a Dask cluster's workers or a ``concurrent.futures`` pool.

``FleetTarget`` is the submitting side: it keys the batch (config, plugin texts,
timeout, mode, label: not one machine's environment, so each record keeps its
worker's) and submits one ``fleet_trial`` task per trial. ``fleet_trial`` runs on the
worker: one trial in an isolated child process exactly as a local run does (the same
supervision: crash, hang, timeout, stderr and stacks kept), returned as the record's
JSON dict. Plugin ``.py`` files travel by content and are loaded on the worker. On a
cluster whose workers declare a ``device`` resource, each task asks for
``resources={"device": 1}``, so trials sharing a device never overlap.

The config travels as a dict (on the wire to the worker, validated there: so
``device="mps"`` can be sent from a machine without one). Not here: the batch loop
(``executors.drive_batch``), one trial's run (``plan``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
from typing import Any

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials import records as _records
from mpslab.trials.executors import is_client, slots, uses_devices
from mpslab.trials.plan import TEMP_PREFIX, default_mode, make_runner, plan_batch, run_one, without_sigint

__all__ = ["FleetTarget", "fleet_trial"]

_PLANS: dict[str, Any] = {}


def _materialise(spec: str, files: dict[str, str]) -> str:
    """A plugin spec usable here: a shipped ``.py`` file is written to a folder named by its content."""
    if spec not in files:
        return spec
    text = files[spec]
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), f"mpslab-plugins-{digest}")
    path = os.path.join(folder, os.path.basename(spec))
    if not os.path.isfile(path):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return path


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def fleet_trial(spec: dict[str, Any], k: int) -> dict[str, Any]:
    """One trial on a worker: isolated child process, supervised as locally; returns its record (JSON-able)."""
    cfg = dict(spec["config"])
    cfg["plugins"] = [_materialise(p, spec["plugin_files"]) for p in cfg.get("plugins") or []]
    mode = default_mode() if spec["mode"] == "auto" else spec["mode"]
    workdir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-trials-")
    runner = make_runner(mode, sys.executable)
    try:
        key = _records.batch_key(config=cfg, spec=spec["batch"], mode=mode)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = plan_batch(cfg, sys.executable, mode, spec["timeout_s"], None, runner, workdir)
            plan.batch = spec["batch"]
        rec = run_one(runner, plan, k, workdir)
    except BaseException:
        without_sigint(runner.abort)
        raise
    finally:
        runner.release()
        shutil.rmtree(workdir, ignore_errors=True)
    rec["config"] = spec["config"]  # as submitted (plugin paths of the submitting machine)
    rec["result"]["worker"] = _worker_name()
    return rec


class FleetTarget:
    """The submitting side of a fleet batch: its key, and one ``fleet_trial`` task per trial."""

    mixed = True  # the key leaves the environment out: records keep their workers' environments

    def __init__(
        self, config: StressConfig | dict[str, Any], timeout_s: float, mode: str, label: str | None, executor: Any
    ) -> None:
        cfg = config.to_dict() if isinstance(config, StressConfig) else dict(config)  # to the wire
        plugins = cfg.get("plugins") or []
        cfg["plugins"] = list([plugins] if isinstance(plugins, str) else plugins)
        files: dict[str, str] = {}
        for plugin in cfg["plugins"]:
            if plugin.endswith(".py"):
                try:
                    with open(plugin, encoding="utf-8") as fh:
                        files[plugin] = fh.read()
                except OSError as exc:
                    raise ConfigError(f"plugins={plugin!r}: cannot be read: {exc.strerror}") from None
        self.batch = _records.batch_key(
            config=cfg, plugin_files=files, timeout_s=float(timeout_s), mode=mode, label=label, fleet=True
        )
        self.config = cfg
        self.spec = {"config": cfg, "plugin_files": files, "timeout_s": float(timeout_s), "mode": mode}
        self.spec["batch"] = self.batch
        self.executor = executor
        self.capacity = slots(executor)
        self.resources = {"device": 1} if uses_devices(executor) else None
        self.desc = f"trials {cfg.get('workload')} (fleet)"

    def submit(self, k: int) -> Any:
        if is_client(self.executor):
            return self.executor.submit(
                fleet_trial, self.spec, k, key=f"mpslab-trial-{self.batch}-{k}", pure=False, resources=self.resources
            )
        return self.executor.submit(fleet_trial, self.spec, k)

    def cancel(self, futures: list[Any]) -> None:
        if is_client(self.executor):
            self.executor.cancel(futures)
        else:
            for fut in futures:
                fut.cancel()

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass
