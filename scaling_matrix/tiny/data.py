"""Generated SQuAD-format QA data, NeMo's SQuAD prompt, byte tokenisation and data-parallel batch sharding.

The data set ("tiny_squad") is templated facts about fictional people, pets and rivers; every answer is an
extractive span of its context. It is generated deterministically (same bytes every time) and written once to
``$NEMO_DATASETS_CACHE/tiny_squad/{training,validation}.json`` (default ``<log_dir>/../datasets/tiny_squad``);
training reads those files back.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from scaling_matrix.tiny import tokenizer

DATASET_VERSION = "tiny-squad-v1"
DATASET_DIRNAME = "tiny_squad"
SPLIT_FILES = {"training": "training.json", "validation": "validation.json"}
SPLIT_PARAGRAPHS = {"training": 400, "validation": 128}
IGNORE_INDEX = -100
T = TypeVar("T")

_FIRST = ("Alma Boris Cyra Dario Elin Farid Greta Hugo Ines Jonas Kaia Lucas Mira Nils Olga Pavel Rosa Sami "
          "Tilda Ugo Vera Wim Yara Zeno").split()
_LAST = ("Berg Costa Dahl Egger Fonseca Grau Holm Ivers Jansen Kovac Lind Moreau Novak Ortiz Petrov Quist "
         "Rossi Santos Torres Ulrich Varga Weber Young Zimmer").split()
_CITIES = ("Oslo Lima Kyoto Porto Dakar Quito Tunis Hanoi Perth Graz Riga Turin Bergen Cusco Leeds Malmo "
           "Nantes Split Tartu Zadar").split()
_JOBS = ("baker pilot nurse farmer lawyer dentist painter tailor chemist plumber librarian jeweller "
         "carpenter florist butcher teacher").split()
_COLORS = "red blue green black white brown grey orange yellow purple".split()
_ANIMALS = "cat dog parrot rabbit horse turtle goat hamster pony ferret".split()
_PETS = "Biscuit Pepper Mochi Noodle Ziggy Waffle Pickle Tofu Bingo Muffin Sprout Pixel".split()
_RIVERS = "Arlen Brisk Corra Dunmore Elwy Fenn Galla Hesper Ithan Jorra Kessel Lomond".split()


@dataclass(frozen=True)
class QAExample:
    """One question with its context and extractive answer."""

    qid: str
    context: str
    question: str
    answer: str


def _paragraph(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    """Returns (context, [(question, answer), ...]) for one randomly templated fact."""
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    city = rng.choice(_CITIES)
    kind = rng.randrange(4)
    if kind == 0:
        year = str(rng.randint(1900, 2015))
        return f"{name} was born in {city} in {year}.", [
            (f"Where was {name} born?", city), (f"In which year was {name} born?", year)]
    if kind == 1:
        job = rng.choice(_JOBS)
        return f"{name} works as a {job} in {city}.", [
            (f"What does {name} work as?", job), (f"Where does {name} work?", city)]
    if kind == 2:
        color, animal, pet = rng.choice(_COLORS), rng.choice(_ANIMALS), rng.choice(_PETS)
        return f"{name} has a {color} {animal} called {pet}.", [
            (f"What color is the {animal} of {name}?", color), (f"What is the name of the {animal}?", pet)]
    river, length = rng.choice(_RIVERS), f"{rng.randint(20, 900)} km"
    return f"The river {river} flows through {city}; it is {length} long.", [
        (f"Where does the {river} flow?", city), (f"How long is the {river}?", length)]


def generate_squad(split: str) -> dict[str, Any]:
    """Returns the SQuAD-structured data set of ``split`` (``training`` or ``validation``), deterministic.

    Args:
        split: Split name.
    """
    rng = random.Random(f"{DATASET_VERSION}-{split}")
    articles: list[dict[str, Any]] = []
    for p in range(SPLIT_PARAGRAPHS[split]):
        if p % 8 == 0:
            articles.append({"title": f"Tiny facts {split} {p // 8}", "paragraphs": []})
        context, pairs = _paragraph(rng)
        qas = [
            {"id": f"{split[:5]}-{p:04d}-{q}", "question": question,
             "answers": [{"text": answer, "answer_start": context.index(answer)}]}
            for q, (question, answer) in enumerate(pairs)
        ]
        articles[-1]["paragraphs"].append({"context": context, "qas": qas})
    return {"version": DATASET_VERSION, "data": articles}


def dataset_dir(log_dir: Path, env: Mapping[str, str]) -> Path:
    """Returns ``$NEMO_DATASETS_CACHE/tiny_squad`` or, without the variable, ``<log_dir>/../datasets/tiny_squad``.

    Args:
        log_dir: The run's log directory.
        env: Environment mapping.
    """
    root = Path(env["NEMO_DATASETS_CACHE"]) if env.get("NEMO_DATASETS_CACHE") else log_dir.parent / "datasets"
    return root / DATASET_DIRNAME


def ensure_dataset(directory: Path) -> dict[str, Path]:
    """Returns ``{split: path}`` after writing missing or outdated split files (atomically, safe across ranks).

    Args:
        directory: The ``tiny_squad`` directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for split, name in SPLIT_FILES.items():
        path = directory / name
        if _read_version(path) != DATASET_VERSION:
            tmp = directory / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(generate_squad(split), indent=1), encoding="utf-8")
            os.replace(tmp, path)
        paths[split] = path
    return paths


def _read_version(path: Path) -> str | None:
    """Returns the ``version`` field of a SQuAD file, or None when missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def load_examples(path: Path) -> list[QAExample]:
    """Returns the flattened questions of a SQuAD JSON file, in file order (first answer used).

    Args:
        path: ``training.json`` or ``validation.json``.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        QAExample(qa["id"], para["context"], qa["question"], qa["answers"][0]["text"])
        for article in data["data"]
        for para in article["paragraphs"]
        for qa in para["qas"]
    ]


def prompt_text(example: QAExample) -> str:
    """Returns NeMo's SQuAD prompt, ``Context: <c> Question: <q> Answer:`` (the answer follows after a space).

    Args:
        example: The question.
    """
    return f"Context: {example.context} Question: {example.question} Answer:"


def encode_example(example: QAExample, seq_length: int) -> tuple[list[int], list[int]]:
    """Returns ``(input_ids, labels)`` of length ``seq_length``; labels are -100 except on answer tokens.

    Layout ``BOS prompt " answer" EOS PAD...``; an over-long prompt loses its oldest bytes (after BOS).

    Args:
        example: The question.
        seq_length: ``data.seq_length``.
    """
    answer = (tokenizer.encode(" " + example.answer) + [tokenizer.EOS_ID])[: seq_length - 2]
    prompt = tokenizer.encode(prompt_text(example))
    room = seq_length - 1 - len(answer)
    prompt = prompt[len(prompt) - room :] if len(prompt) > room else prompt
    ids = [tokenizer.BOS_ID] + prompt + answer
    labels = [IGNORE_INDEX] * (1 + len(prompt)) + answer
    pad = seq_length - len(ids)
    return ids + [tokenizer.PAD_ID] * pad, labels + [IGNORE_INDEX] * pad


def global_batch(step: int, n_examples: int, global_batch_size: int, seed: int) -> tuple[int, int, list[int]]:
    """Returns ``(epoch, iteration, example indices)`` of the global batch of ``step``.

    Each epoch is a seeded permutation of the training set, cut into ``n // gbs`` full global batches.

    Args:
        step: 0-based global step.
        n_examples: Training-set size.
        global_batch_size: ``data.global_batch_size``.
        seed: Data-order seed.

    Raises:
        ValueError: The training set is smaller than one global batch.
    """
    per_epoch = n_examples // global_batch_size
    if per_epoch == 0:
        raise ValueError(f"training set ({n_examples} examples) is smaller than data.global_batch_size "
                         f"({global_batch_size})")
    epoch, iteration = divmod(step, per_epoch)
    order = list(range(n_examples))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    start = iteration * global_batch_size
    return epoch, iteration, order[start : start + global_batch_size]


def rank_shard(indices: list[int], rank: int, world_size: int) -> list[int]:
    """Returns rank ``rank``'s contiguous, disjoint share of a global batch (Megatron layout).

    Args:
        indices: Global-batch indices (length divisible by ``world_size``).
        rank: Data-parallel rank.
        world_size: Data-parallel size.
    """
    per_rank = len(indices) // world_size
    return indices[rank * per_rank : (rank + 1) * per_rank]


def chunk(items: Sequence[T], size: int) -> list[list[T]]:
    """Returns ``items`` cut into consecutive lists of ``size`` (the last may be shorter).

    Args:
        items: Items to cut (indices or examples).
        size: Chunk length (micro-batch size).
    """
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def validation_indices(n_val: int, global_batch_size: int, limit_val_batches: int | float | None) -> list[int]:
    """Returns the deterministic validation subset: the first ``k`` full global batches of the file.

    ``None`` -> all full batches; int -> ``min(limit, available)``; float -> that fraction (at least one);
    0 -> no validation. A validation set smaller than one global batch is used whole.

    Args:
        n_val: Validation-set size.
        global_batch_size: ``data.global_batch_size``.
        limit_val_batches: ``trainer.limit_val_batches``.
    """
    available = n_val // global_batch_size
    if limit_val_batches == 0:
        return []
    if available == 0:
        return list(range(n_val))
    if limit_val_batches is None:
        batches = available
    elif isinstance(limit_val_batches, float) and limit_val_batches <= 1.0:
        batches = max(1, int(available * limit_val_batches))
    else:
        batches = min(int(limit_val_batches), available)
    return list(range(batches * global_batch_size))
