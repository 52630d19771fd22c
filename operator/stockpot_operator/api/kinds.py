"""The four kinds: names, models, printer columns and subresources — everything the CRDs are generated from."""

from __future__ import annotations

from dataclasses import dataclass, field

from stockpot_runtime.spec import RootSpec, SpecModel

from .evalgate import EvalGateSpec, EvalGateStatus
from .export import ExportSpec, ExportStatus
from .finetune import FineTuneSpec, FineTuneStatus
from .inferenceservice import InferenceServiceSpec, InferenceServiceStatus

GROUP = "stockpot.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "stockpot"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0

    def to_crd(self) -> dict[str, object]:
        column: dict[str, object] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class ScaleSubresource:
    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str


@dataclass(frozen=True)
class Kind:
    """One custom resource kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[RootSpec]
    status: type[SpecModel]
    description: str
    columns: tuple[PrinterColumn, ...] = ()
    scale: ScaleSubresource | None = None
    namespaced: bool = field(default=True)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


PHASE = PrinterColumn("Phase", "string", ".status.phase", "Lifecycle phase")
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")

FINETUNE = Kind(
    kind="FineTune",
    plural="finetunes",
    short_names=("ft",),
    spec=FineTuneSpec,
    status=FineTuneStatus,
    description="Fine-tunes a base model (SFT, preference, GRPO, distillation…) with LoRA/QLoRA/DoRA or fully.",
    columns=(
        PrinterColumn("Method", "string", ".spec.method.task", "Training method"),
        PHASE,
        PrinterColumn("Progress", "string", ".status.progress.summary", "Steps done / planned"),
        PrinterColumn("Loss", "number", ".status.progress.loss", "Latest training loss"),
        PrinterColumn("Resumes", "integer", ".status.resumes", "Resumes from a checkpoint", priority=1),
        PrinterColumn("Artifact", "string", ".status.artifact.uri", "Committed artifact", priority=1),
        AGE,
    ),
)

EXPORT = Kind(
    kind="Export",
    plural="exports",
    short_names=("spx",),
    spec=ExportSpec,
    status=ExportStatus,
    description="Merges adapters and converts a trained model (safetensors, GGUF, ONNX, AWQ, GPTQ).",
    columns=(
        PrinterColumn("Format", "string", ".spec.export.format", "Target format"),
        PHASE,
        PrinterColumn("Artifact", "string", ".status.artifact.uri", "Committed artifact", priority=1),
        AGE,
    ),
)

EVALGATE = Kind(
    kind="EvalGate",
    plural="evalgates",
    short_names=("eg",),
    spec=EvalGateSpec,
    status=EvalGateStatus,
    description="Scores a model on eval suites against thresholds and a baseline; its verdict gates promotion.",
    columns=(
        PHASE,
        PrinterColumn("Verdict", "string", ".status.verdict", "Passed or Failed"),
        PrinterColumn("Report", "string", ".status.report.uri", "Evaluation report", priority=1),
        AGE,
    ),
)

INFERENCESERVICE = Kind(
    kind="InferenceService",
    plural="inferenceservices",
    short_names=("isvc", "spis"),
    spec=InferenceServiceSpec,
    status=InferenceServiceStatus,
    description="Serves a model and its LoRA adapters behind an OpenAI-compatible API, autoscaled.",
    columns=(
        PrinterColumn("Engine", "string", ".spec.engine", "Serving engine"),
        PHASE,
        PrinterColumn("Ready", "integer", ".status.readyReplicas", "Ready replicas"),
        PrinterColumn("URL", "string", ".status.url", "API base URL"),
        AGE,
    ),
    scale=ScaleSubresource(".spec.replicas", ".status.replicas", ".status.selector"),
)

KINDS: tuple[Kind, ...] = (FINETUNE, EXPORT, EVALGATE, INFERENCESERVICE)
KINDS_BY_NAME = {kind.kind: kind for kind in KINDS}
