"""Chat templates: named ones written after the real models' formats, raw Jinja in a sandbox, or the tokenizer's.

``resolve_template(spec_value, tokenizer_template)`` returns a ``ChatTemplate``: ``spec_value`` is a name in
``NAMED_TEMPLATES`` (chatml, llama3, qwen2.5, mistral, gemma, phi), a Jinja string, or None for the tokenizer's
own template. Every template renders in a jinja2 ``ImmutableSandboxedEnvironment`` without a loader;
templates using ``include``/``import``/``extends``/``from`` are rejected with ``UnsafeTemplateError``.
``{% generation %}`` blocks (used for assistant masks) are accepted and render their body.
``TEMPLATE_SPECIAL_TOKENS[name]`` lists the special tokens a named template needs in the vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .formats import Message

_CHATML = (
    "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
_QWEN25 = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content }}{%- else %}{{- default_system }}{%- endif %}"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    "<args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'user' or (m.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}{{- '<|im_start|>assistant' }}"
    "{%- if m.content %}{{- '\\n' + m.content }}{%- endif %}"
    "{%- for call in m.tool_calls or [] %}"
    '{{- \'\\n<tool_call>\\n{"name": "\' + call.function.name + \'", "arguments": \' }}'
    "{{- call.function.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif m.role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + m.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_LLAMA3 = (
    "{{- bos_token }}"
    "{%- if tools %}{{- '<|start_header_id|>system<|end_header_id|>\\n\\nEnvironment: ipython\\n\\n"
    "You have access to the following functions:\\n\\n' }}"
    "{%- for tool in tools %}{{- tool | tojson + '\\n\\n' }}{%- endfor %}{{- '<|eot_id|>' }}{%- endif %}"
    "{%- for m in messages %}"
    "{%- set role = 'ipython' if m.role == 'tool' else m.role %}"
    "{{- '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' }}"
    "{%- if m.tool_calls %}{%- for call in m.tool_calls %}"
    "{{- '{\"name\": \"' + call.function.name + '\", \"parameters\": ' + call.function.arguments | tojson + '}' }}"
    "{%- endfor %}{%- else %}{{- m.content | trim }}{%- endif %}{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

_MISTRAL = (
    "{%- set system = messages[0].content if messages[0].role == 'system' else '' %}"
    "{%- set loop_messages = messages[1:] if messages[0].role == 'system' else messages %}"
    "{{- bos_token }}"
    "{%- for m in loop_messages %}"
    "{%- if m.role == 'user' %}"
    "{%- if tools and loop.last %}{{- '[AVAILABLE_TOOLS] ' + tools | tojson + '[/AVAILABLE_TOOLS]' }}{%- endif %}"
    "{{- '[INST] ' }}{%- if system and loop.first %}{{- system + '\\n\\n' }}{%- endif %}"
    "{{- m.content + ' [/INST]' }}"
    "{%- elif m.role == 'assistant' and m.tool_calls %}{{- '[TOOL_CALLS] [' }}"
    "{%- for call in m.tool_calls %}"
    "{{- '{\"name\": \"' + call.function.name + '\", \"arguments\": ' + call.function.arguments | tojson + '}' }}"
    "{%- if not loop.last %}{{- ', ' }}{%- endif %}{%- endfor %}{{- ']' + eos_token }}"
    "{%- elif m.role == 'assistant' %}{{- m.content + eos_token }}"
    "{%- elif m.role == 'tool' %}"
    "{{- '[TOOL_RESULTS] {\"content\": ' + m.content | tojson + '}[/TOOL_RESULTS]' }}"
    "{%- endif %}{%- endfor %}"
)

_GEMMA = (
    "{{- bos_token }}"
    "{%- set system = messages[0].content if messages[0].role == 'system' else '' %}"
    "{%- set loop_messages = messages[1:] if messages[0].role == 'system' else messages %}"
    "{%- for m in loop_messages %}"
    "{%- if m.role not in ['user', 'assistant'] %}"
    "{{- raise_exception('gemma supports only system, user and assistant roles') }}{%- endif %}"
    "{%- set role = 'model' if m.role == 'assistant' else 'user' %}"
    "{{- '<start_of_turn>' + role + '\\n' }}"
    "{%- if system and loop.first %}{{- system + '\\n\\n' }}{%- endif %}"
    "{{- m.content | trim + '<end_of_turn>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"
)

_PHI = (
    "{%- for m in messages %}"
    "{%- if m.role == 'system' and m.content %}{{- '<|system|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- elif m.role == 'user' %}{{- '<|user|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}{{- '<|assistant|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- else %}{{- eos_token }}{%- endif %}"
)

NAMED_TEMPLATES: dict[str, str] = {
    "chatml": _CHATML,
    "qwen2.5": _QWEN25,
    "llama3": _LLAMA3,
    "mistral": _MISTRAL,
    "gemma": _GEMMA,
    "phi": _PHI,
}

TEMPLATE_SPECIAL_TOKENS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "qwen2.5": ("<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"),
    "llama3": ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "mistral": ("<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"),
    "gemma": ("<bos>", "<start_of_turn>", "<end_of_turn>"),
    "phi": ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
}

TEMPLATE_BOS: dict[str, str] = {"llama3": "<|begin_of_text|>", "mistral": "<s>", "gemma": "<bos>"}
TEMPLATE_EOS: dict[str, str] = {"mistral": "</s>"}
_FORBIDDEN = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from", nodes.Extends: "extends"}


class UnsafeTemplateError(ValueError):
    """The Jinja template uses a construct that could reach files or other templates."""


class _GenerationBlocks(Extension):
    """Accept ``{% generation %}...{% endgeneration %}`` (HF assistant-mask markers) and render the body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body).set_lineno(lineno)


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def sandbox() -> ImmutableSandboxedEnvironment:
    """The environment every template renders in: immutable sandbox, no loader, HF-compatible helpers."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlocks], loader=None, autoescape=False
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    return env


def check_template(source: str) -> None:
    """Raise ``UnsafeTemplateError`` naming any include/import/extends/from construct, or a syntax error."""
    env = sandbox()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as e:
        raise UnsafeTemplateError(f"chat template does not parse: line {e.lineno}: {e.message}") from e
    for node_type, name in _FORBIDDEN.items():
        for node in tree.find_all(node_type):
            raise UnsafeTemplateError(f"chat template line {node.lineno}: '{name}' is not allowed in chat templates")


@lru_cache(maxsize=32)
def compiled(source: str) -> jinja2.Template:
    """The sandboxed template for ``source``, compiled once (rendering a conversation renders it many times)."""
    return sandbox().from_string(source)


@dataclass(frozen=True)
class ChatTemplate:
    """A checked template plus the special-token strings it references (bos/eos)."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    name: str = "custom"

    def render(
        self, messages: list[Message], tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = False
    ) -> str:
        """The conversation as text, exactly as the model sees it."""
        return compiled(self.source).render(
            messages=messages,
            tools=tools,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            default_system=_QWEN_DEFAULT_SYSTEM,
        )


def resolve_template(value: str | None, tokenizer: Any) -> ChatTemplate:
    """The template named or written in the spec, else the tokenizer's own; the tokenizer supplies bos/eos."""
    bos = str(getattr(tokenizer, "bos_token", None) or "")
    eos = str(getattr(tokenizer, "eos_token", None) or "")
    if value is None:
        source = getattr(tokenizer, "chat_template", None)
        if not isinstance(source, str):
            raise ValueError("the tokenizer has no chat template; set chatTemplate to a name or Jinja")
        check_template(source)
        return ChatTemplate(source, bos, eos, name="tokenizer")
    if value in NAMED_TEMPLATES:
        return ChatTemplate(
            NAMED_TEMPLATES[value], TEMPLATE_BOS.get(value, bos), TEMPLATE_EOS.get(value, eos), name=value
        )
    check_template(value)
    return ChatTemplate(value, bos, eos)
