# written by mpslab advise: registers the batched candidate for isolated trials
from mpslab.studies.advisor.batching import register_batched
register_batched('mlp', 8)
