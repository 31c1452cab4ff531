"""Paper tables: every method over seeded splits, metrics with mean and std, report and plots."""

from speakerrpl.evaluation.experiments import EvalConfig, run_evaluation

__all__ = ["EvalConfig", "run_evaluation"]
