from typing import Any

import pytest

from stockpot_runtime.data.masking import IGNORE_INDEX, TokenizedExample
from stockpot_runtime.data.packing import multipack_bins, pack_greedy, pack_multipack, padding_efficiency
from stockpot_runtime.data.templates import NAMED_TEMPLATES, UnsafeTemplateError, check_template, resolve_template

pytestmark = pytest.mark.unit
MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


class _Tok:
    bos_token = "<s>"
    eos_token = "</s>"
    chat_template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"


@pytest.mark.parametrize(
    "construct", ["{% include 'x' %}", "{% import 'x' as y %}", "{% extends 'x' %}", "{% from 'x' import y %}"]
)
def test_sandbox_rejects_file_constructs(construct: Any) -> None:
    with pytest.raises(UnsafeTemplateError, match=construct.split()[1]):
        check_template(construct)


def test_sandbox_blocks_python_internals() -> None:
    template = resolve_template("{{ messages.__class__.__mro__[1].__subclasses__() }}", _Tok())
    with pytest.raises(Exception, match=r"unsafe|undefined"):
        template.render(MESSAGES)


@pytest.mark.parametrize("name", list(NAMED_TEMPLATES))
def test_named_templates_render_with_generation_prompt(name: Any) -> None:
    template = resolve_template(name, _Tok())
    text = template.render(MESSAGES, add_generation_prompt=True)
    assert "hi" in text
    assert "yo" in text


def test_tokenizer_template_is_used_when_unset() -> None:
    assert resolve_template(None, _Tok()).render(MESSAGES) == "[user]hi[assistant]yo"


def _doc(n: int, start: int = 1) -> TokenizedExample:
    return TokenizedExample(list(range(start, start + n)), list(range(start, start + n)))


def test_packing_restarts_positions_and_masks_first_label() -> None:
    packed = pack_greedy([_doc(3), _doc(2, 10)], max_length=8)
    assert len(packed) == 1
    assert packed[0].position_ids == [0, 1, 2, 0, 1]
    assert packed[0].labels == [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 11]


def test_multipack_beats_greedy_on_padding() -> None:
    docs = [_doc(n) for n in (6, 5, 4, 5)]
    greedy, ffd = pack_greedy(docs, 10), pack_multipack(docs, 10)
    assert sorted(t for p in ffd for t in p.input_ids) == sorted(t for d in docs for t in d.input_ids)
    assert all(len(p) <= 10 for p in ffd)
    assert padding_efficiency(ffd, 10) > padding_efficiency(greedy, 10)
    assert sorted(sorted(b) for b in multipack_bins([6, 5, 4, 5], 10)) == [[0, 2], [1, 3]]
