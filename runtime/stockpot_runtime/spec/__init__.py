"""The runtime's input contract (run specs) and the building blocks the operator's resources reuse.

Importing this package is cheap: pydantic only, never torch or the training stack.
"""

from .base import FieldError, Problem, RootSpec, SpecModel, field_errors, format_path
from .checkpoint import CheckpointSpec
from .data import DataFormat, DataSpec, Packing
from .distributed import DistributedPreset, DistributedSpec, World
from .evaluation import JudgeConfig, Scoring, Suite, SuiteType, Threshold
from .export import ExportConfig, ExportFormat, GgufQuant, WeightQuantConfig
from .method import DistillConfig, GrpoConfig, KtoConfig, MethodSpec, PreferenceConfig, Reward, Task
from .model import ModelSource, uri_scheme
from .peft import AdapterType, PeftSpec, Quantization
from .runs import (
    SPEC_PATH,
    Adapter,
    EvalRun,
    ExportRun,
    Lineage,
    RunSpecError,
    ServeRun,
    TrainRun,
    load_run,
    training_problems,
)
from .serving import Engine, VllmConfig
from .storage import StorageSpec
from .training import Optimizer, Precision, Scheduler, TrainingSpec

__all__ = [
    "SPEC_PATH",
    "Adapter",
    "AdapterType",
    "CheckpointSpec",
    "DataFormat",
    "DataSpec",
    "DistillConfig",
    "DistributedPreset",
    "DistributedSpec",
    "Engine",
    "EvalRun",
    "ExportConfig",
    "ExportFormat",
    "ExportRun",
    "FieldError",
    "GgufQuant",
    "GrpoConfig",
    "JudgeConfig",
    "KtoConfig",
    "Lineage",
    "MethodSpec",
    "ModelSource",
    "Optimizer",
    "Packing",
    "PeftSpec",
    "Precision",
    "PreferenceConfig",
    "Problem",
    "Quantization",
    "Reward",
    "RootSpec",
    "RunSpecError",
    "Scheduler",
    "Scoring",
    "ServeRun",
    "SpecModel",
    "StorageSpec",
    "Suite",
    "SuiteType",
    "Task",
    "Threshold",
    "TrainRun",
    "TrainingSpec",
    "VllmConfig",
    "WeightQuantConfig",
    "World",
    "field_errors",
    "format_path",
    "load_run",
    "training_problems",
    "uri_scheme",
]
