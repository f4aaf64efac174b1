"""Any invalid StressConfig value is refused with one ConfigError line that names the field (hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from mpslab.run.config import ConfigError, StressConfig

not_an_int = st.one_of(
    st.booleans(), st.floats(allow_nan=True), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)
)
text = st.text(max_size=12)

# field -> a strategy of values that field must refuse
INVALID = {
    "threads": st.one_of(st.integers(max_value=0), not_an_int),
    "iterations": st.one_of(st.integers(max_value=0), not_an_int),
    "sync_every": st.one_of(st.integers(max_value=-1), not_an_int),
    "size": st.one_of(st.integers(max_value=0), not_an_int),
    "seed": st.one_of(st.integers(max_value=-1), not_an_int),
    "warmup": st.one_of(st.integers(max_value=-1), not_an_int),
    "throttle": st.one_of(st.integers(max_value=0), st.integers(min_value=65, max_value=10**6)),
    "dtype": text.filter(lambda s: s not in ("float32", "float16", "bfloat16", "float64")),
    "streams": text.filter(lambda s: s not in ("shared", "per-thread")),
    "workload": text.filter(lambda s: s not in ("seed", "mlp")).map(lambda s: "no-such-" + s),
    "device": text.filter(lambda s: s not in ("auto", "cpu")).map(lambda s: "nodev" + s),
    "verify": text.filter(lambda s: s not in ("fingerprint", "full", "off")).map(lambda s: "x" + s),
    "full_cap_mb": st.one_of(st.floats(max_value=0), st.just(float("inf")), st.text(max_size=3)),
}


@given(st.sampled_from(sorted(INVALID)).flatmap(lambda f: st.tuples(st.just(f), INVALID[f])))
def test_an_invalid_value_is_refused_in_one_line_naming_the_field(field_value):
    field, value = field_value
    kwargs = {"device": "cpu", "threads": 64, "iterations": 2, "size": 8, field: value}
    try:
        StressConfig(**kwargs)
    except ConfigError as exc:
        message = str(exc)
        assert exc.param == field, message  # typed: the CLI words it as this field's flag
    else:
        raise AssertionError(f"{field}={value!r} was accepted")
    assert "\n" not in message and message.strip() == message and message
    assert message.startswith(f"{field}=") or f"{field}=" in message.split(":")[0], message
