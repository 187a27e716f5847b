"""Canary judges: Kayenta-style statistical comparison, Flagger- and Argo-style threshold analysis.

All three return a `Judgement` subclass carrying a `Verdict` and a one-line `reason`. The rollout
loop does not use them yet; see docs/canary-judge.md.
"""

from deploysim.judge.argo import ArgoAnalysis, ArgoMetric, Measurement, Phase, argo_analysis
from deploysim.judge.condition import ConditionError, parse_condition
from deploysim.judge.flagger import FlaggerAnalysis, FlaggerConfig, FlaggerMetric, ThresholdRange, flagger_analysis
from deploysim.judge.kayenta import CanaryAnalysis, GroupScore, ScoreConfig, judge_canary, score_canary
from deploysim.judge.mann_whitney import (
    Classification,
    Direction,
    EffectMeasure,
    MetricConfig,
    MetricResult,
    NanStrategy,
    ShiftInterval,
    classify,
)
from deploysim.judge.verdict import Judgement, Verdict

__all__ = [
    "ArgoAnalysis",
    "ArgoMetric",
    "CanaryAnalysis",
    "Classification",
    "ConditionError",
    "Direction",
    "EffectMeasure",
    "FlaggerAnalysis",
    "FlaggerConfig",
    "FlaggerMetric",
    "GroupScore",
    "Judgement",
    "Measurement",
    "MetricConfig",
    "MetricResult",
    "NanStrategy",
    "Phase",
    "ScoreConfig",
    "ShiftInterval",
    "ThresholdRange",
    "Verdict",
    "argo_analysis",
    "classify",
    "flagger_analysis",
    "judge_canary",
    "parse_condition",
    "score_canary",
]
