"""Checkpoint fuzzing: every hostile or malformed file ends in ``WeightsError`` (or loads, where it is valid).

A seeded generator (``ENCDEC_FUZZ_SEED=<int>`` picks another seed) builds more than 500 files a run: truncated,
bit-flipped and rewritten safetensors; random bytes; zip archives with missing, extra, damaged or lying
members; pickles whose opcodes call ``os.system``, ``builtins.eval``, ``subprocess`` and friends or build
arbitrary classes, in every pickle container torch reads; deeply nested and self-referencing containers;
non-tensor values; tensors of wrong shapes, dtypes and layouts; NaN and inf; configs that ask for huge models.
Each file goes through ``encdec.load_weights`` (strict, and non-strict for valid-looking files) and
``read_metadata``; the test fails on any other exception, on an error message that does not name the file or
the expected problem, and on any sentinel file a payload would have created. A subprocess under an
address-space limit checks that files claiming terabytes are refused before anything is allocated.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import pickletools
import random
import re
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes
from torch import nn

import encdec
from encdec.weights import read_metadata

SEED = int(os.environ.get("ENCDEC_FUZZ_SEED", "20250607"))
MIN_CASES = 1000
MAX_MESSAGE = 4000  # hostile files carry megabyte-long names; messages must stay readable


class Tiny(nn.Module):
    """The model every fuzzed file is loaded into: conv, BatchNorm (with an integer counter) and linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)


def tiny_state(seed: int = 0) -> Dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = Tiny().state_dict()
    return {k: (torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v.clone())
            for k, v in state.items()}


@dataclass
class Case:
    """One generated file: its bytes, the suffix it is saved under, and what loading it must do.

    ``expect`` is ``"error"`` (must raise ``WeightsError`` whose message matches ``match``), ``"load"`` (must
    load) or ``"either"`` (random damage that may or may not break the file).
    """

    kind: str
    label: str
    data: bytes
    suffix: str = ".pth"
    expect: str = "error"
    match: str = ""
    sentinel: Optional[str] = None


# ----------------------------------------------------------------------------------------------- file builders


def torch_bytes(obj: Any, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_file(main: bytes, keys: Tuple[str, ...] = (), data: bytes = b"", magic: Optional[bytes] = None) -> bytes:
    """A legacy (pre-1.6) torch file around the pickle ``main``: magic, protocol, system info, main, keys, data."""
    first = magic if magic is not None else pickle.dumps(LEGACY_MAGIC, protocol=2)
    return (first + pickle.dumps(1001, protocol=2) + pickle.dumps(SYS_INFO, protocol=2) + main
            + pickle.dumps(list(keys), protocol=2) + data)


def zip_file(members: Dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return buf.getvalue()


def zip_members(data: bytes) -> Dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def torch_zip(data_pkl: bytes, records: Optional[Dict[str, bytes]] = None) -> bytes:
    members = {"archive/data.pkl": data_pkl, "archive/byteorder": b"little", "archive/version": b"3\n"}
    members.update({f"archive/data/{k}": v for k, v in (records or {}).items()})
    return zip_file(members)


def frag(obj: Any) -> bytes:
    """Pickle opcodes that push ``obj`` (protocol 2, without the PROTO header and STOP)."""
    body = pickletools.optimize(pickle.dumps(obj, protocol=2))
    return body[2:-1]


def pickled(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


class _StorageRef:
    def __init__(self, key: str, numel: int, storage: str = "FloatStorage") -> None:
        self.key, self.numel, self.storage = key, numel, storage


class _TensorRef:
    def __init__(self, ref: _StorageRef, size: Tuple[int, ...], stride: Tuple[int, ...], offset: int = 0) -> None:
        self.ref, self.size, self.stride, self.offset = ref, size, stride, offset

    def __reduce__(self):
        args = (self.ref, self.offset, self.size, self.stride, False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args)


class _TorchPickler(pickle.Pickler):
    """Writes ``_TensorRef`` objects the way torch.save does, with storage sizes of our choosing."""

    def __init__(self, f: io.BytesIO, zip_format: bool) -> None:
        super().__init__(f, protocol=2)
        self.zip_format = zip_format

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _StorageRef):
            storage = getattr(torch, obj.storage)
            if self.zip_format:
                return ("storage", storage, obj.key, "cpu", obj.numel)
            return ("storage", storage, obj.key, "cpu", obj.numel, None)
        return None


def torch_pickle(obj: Any, zip_format: bool) -> bytes:
    buf = io.BytesIO()
    _TorchPickler(buf, zip_format).dump(obj)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------- payloads

# Calls that would create the sentinel file if anything ran them: (module, name, args for sentinel path s).
SENTINEL_CALLS: List[Tuple[str, str, Callable[[str], tuple]]] = [
    ("os", "system", lambda s: (f"touch {s}",)),
    ("posix", "system", lambda s: (f"touch {s}",)),
    ("builtins", "eval", lambda s: (f"open({s!r}, 'w').close()",)),
    ("builtins", "exec", lambda s: (f"open({s!r}, 'w').close()",)),
    ("subprocess", "call", lambda s: (["touch", s],)),
    ("subprocess", "check_output", lambda s: (["touch", s],)),
    ("subprocess", "Popen", lambda s: (["touch", s],)),
    ("builtins", "open", lambda s: (s, "w")),
    ("io", "open", lambda s: (s, "w")),
    ("os", "mkdir", lambda s: (s,)),
    ("torch", "save", lambda s: ({}, s)),
    ("torch.serialization", "save", lambda s: ({}, s)),
]
# Globals that are not allowed either, though they would not touch the sentinel.
OTHER_GLOBALS: List[Tuple[str, str, tuple]] = [
    ("os", "_exit", (3,)),
    ("sys", "exit", (3,)),
    ("builtins", "__import__", ("os",)),
    ("builtins", "getattr", ("x", "upper")),
    ("importlib", "import_module", ("os",)),
    ("pickle", "loads", (b"N.",)),
    ("torch", "load", ("/nonexistent",)),
    ("__main__", "Evil", ()),
    ("encdec.weights", "LoadReport", ()),
    ("torch.nn.modules.linear", "Linear", (2, 2)),
    ("collections", "UserDict", ()),
    ("numpy", "frombuffer", (b"\0\0\0\0", "float32")),
]
CALL_STYLES = ["reduce", "stack_reduce", "inst", "obj", "newobj", "build", "ext"]
PLACEMENTS = ["top", "value", "key", "list", "memo", "persid"]
CONTAINERS = ["raw", "legacy", "legacy_magic", "zip"]


def global_op(module: str, name: str, stack: bool) -> bytes:
    if stack:  # STACK_GLOBAL, the protocol-4 form
        return frag(module) + frag(name) + b"\x93"
    return b"c" + f"{module}\n{name}\n".encode()


def call_op(module: str, name: str, args: tuple, style: str) -> bytes:
    """Opcodes that call ``module.name(*args)`` when an unrestricted unpickler runs them."""
    if style in ("reduce", "stack_reduce"):
        return global_op(module, name, style == "stack_reduce") + frag(tuple(args)) + b"R"
    if style == "inst":
        return b"(" + b"".join(frag(a) for a in args) + b"i" + f"{module}\n{name}\n".encode()
    if style == "obj":
        return b"(" + global_op(module, name, False) + b"".join(frag(a) for a in args) + b"o"
    if style == "newobj":
        return global_op(module, name, False) + frag(tuple(args)) + b"\x81"
    if style == "build":  # an allowed object whose BUILD state smuggles the call in
        return (b"ccollections\nOrderedDict\n)R}" + frag("x") + call_op(module, name, args, "reduce") + b"sb")
    if style == "ext":  # copyreg extension code 1, then the call
        return b"\x82\x01" + frag(tuple(args)) + b"R"
    raise ValueError(style)


def place(payload: bytes, placement: str) -> bytes:
    """Put the object ``payload`` pushes somewhere in a checkpoint-like structure."""
    if placement == "top":
        return payload
    if placement == "value":
        return b"}" + frag("state_dict") + b"}" + frag("fc.weight") + payload + b"ss"
    if placement == "key":
        return b"}" + payload + frag("x") + b"s"
    if placement == "list":
        return b"}" + frag("state_dict") + b"]" + payload + b"as"
    if placement == "memo":
        return payload + b"q\x07" + b"0" + b"h\x07"
    if placement == "persid":
        return b"(" + frag("storage") + payload + frag("0") + frag("cpu") + frag(4) + b"tQ"
    raise ValueError(placement)


def contain(body: bytes, container: str) -> Tuple[bytes, str]:
    if container == "raw":
        return pickled(body), ".pkl"
    if container == "legacy":
        return legacy_file(pickled(body)), ".pth"
    if container == "legacy_magic":
        return legacy_file(pickled(frag({})), magic=pickled(body)), ".pt"
    return torch_zip(pickled(body)), ".pt"


# ----------------------------------------------------------------------------------------------- generators


def safetensors_file(state: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    return safetensors_bytes({k: v.contiguous() for k, v in state.items()}, metadata=metadata)


def split_safetensors(data: bytes) -> Tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_safetensors(header: Any, body: bytes, raw: Optional[bytes] = None) -> bytes:
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def flip_bits(data: bytes, rng: random.Random, count: int, lo: int = 0, hi: Optional[int] = None) -> bytes:
    out = bytearray(data)
    hi = len(out) if hi is None else min(hi, len(out))
    for _ in range(count):
        i = rng.randrange(lo, hi)
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def gen_safetensors(rng: random.Random) -> List[Case]:
    base = safetensors_file(tiny_state(), {"format": "pt", "note": "fuzz"})
    header, body = split_safetensors(base)
    hlen = 8 + struct.unpack("<Q", base[:8])[0]
    cases = [Case("safetensors", "valid", base, ".safetensors", "load"),
             Case("safetensors", "valid, .bin name", base, ".bin", "load")]
    cuts = list(range(0, 10)) + [hlen - 1, hlen, hlen + 1, len(base) - 1]
    cuts += [rng.randrange(len(base)) for _ in range(40)]
    for cut in cuts:
        cases.append(Case("safetensors", f"truncated at {cut}", base[:cut], ".safetensors", "error",
                          r"safetensors|not a checkpoint"))
    for i in range(200):
        in_header = i % 10 < 7
        data = flip_bits(base, rng, rng.randint(1, 6), 0 if in_header else hlen, hlen if in_header else None)
        cases.append(Case("safetensors", f"bit flips #{i} ({'header' if in_header else 'data'})", data,
                          rng.choice([".safetensors", ".bin"]), "either"))
    for n in [len(base) - 7, len(base), 2**40, 2**63, 2**64 - 1, 100 * 1024 * 1024 + 1, 0, hlen - 9, 1]:
        data = struct.pack("<Q", n) + base[8:]
        cases.append(Case("safetensors", f"header length {n}", data, ".safetensors", "error",
                          r"header length|not valid JSON|corrupt safetensors"))
    text = base[8:hlen]
    bad_json = {
        "garbage": bytes(rng.randrange(256) for _ in range(len(text))),
        "truncated JSON": text[: len(text) // 2],
        "array": b"[1, 2, 3]",
        "string": b'"hello"',
        "null": b"null",
        "deep nesting": b'{"a":' + b"[" * 50000 + b"]" * 50000 + b"}",
        "5000-digit int": b'{"a": {"dtype": "F32", "shape": [' + b"7" * 5000 + b'], "data_offsets": [0, 4]}}',
        "NaN shape": b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}',
        "invalid utf-8": b'{"\xff\xfe": 1}',
        "trailing data": text + b"xyz",
        "lone surrogate": b'{"\\ud800": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
        "BOM": b"\xef\xbb\xbf" + text,
    }
    for label, raw in bad_json.items():
        cases.append(Case("safetensors", f"header {label}", join_safetensors(None, body, raw), ".safetensors", "error",
                          r"JSON|corrupt safetensors|header"))
    key = "conv.weight"
    entry = header[key]
    start, end = entry["data_offsets"]
    entry_edits = {
        "unknown dtype": {"dtype": "F128"},
        "dtype null": {"dtype": None},
        "dtype int": {"dtype": 5},
        "negative dim": {"shape": [-4, 3, 3, 3]},
        "string dim": {"shape": ["4", 3, 3, 3]},
        "float dim": {"shape": [4.0, 3, 3, 3]},
        "bool dim": {"shape": [True, 3, 3, 3]},
        "shape not a list": {"shape": 108},
        "shape claims a terabyte": {"shape": [2**20, 2**20, 2**20]},
        "wrong byte count": {"shape": [4, 3, 3, 2]},
        "offsets reversed": {"data_offsets": [end, start]},
        "offsets beyond data": {"data_offsets": [start, len(body) + 4]},
        "offsets negative": {"data_offsets": [-4, end]},
        "offsets three": {"data_offsets": [start, end, end]},
        "offsets strings": {"data_offsets": [str(start), str(end)]},
        "offsets overflow": {"data_offsets": [2**64, 2**64 + end - start]},
        "entry missing fields": None,
    }
    for label, edit in entry_edits.items():
        h = json.loads(json.dumps(header))
        if edit is None:
            h[key] = {"dtype": "F32"}
        else:
            h[key].update(edit)
        cases.append(Case("safetensors", f"entry {label}", join_safetensors(h, body), ".safetensors", "error",
                          r"corrupt safetensors"))
    others = {
        "entry not an object": lambda h: h.__setitem__(key, [1, 2]),
        "metadata a list": lambda h: h.__setitem__("__metadata__", ["a"]),
        "metadata non-string value": lambda h: h["__metadata__"].__setitem__("n", 5),
        "overlapping tensors": lambda h: h["conv.bias"].__setitem__("data_offsets", h[key]["data_offsets"][:1]
                                                                     + [h[key]["data_offsets"][0] + 16]),
        "duplicate range": lambda h: h.__setitem__("extra", dict(h["conv.bias"])),
    }
    for label, edit in others.items():
        h = json.loads(json.dumps(header))
        edit(h)
        cases.append(Case("safetensors", label, join_safetensors(h, body), ".safetensors", "error",
                          r"corrupt safetensors|does not fit|unexpected"))
    cases.append(Case("safetensors", "data section with a gap", join_safetensors(header, body + b"\0" * 12),
                      ".safetensors", "error", r"corrupt safetensors"))
    return cases


def gen_random_bytes(rng: random.Random) -> List[Case]:
    cases = []
    prefixes = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", b"\x10\x00\x00\x00\x00\x00\x00\x00{", b"PK\x05\x06",
                b"\x93NUMPY", b"\x89HDF\r\n\x1a\n"]
    for i in range(150):
        n = rng.choice([0, 1, 7, 8, 9, 64, 512, 4096])
        data = rng.choice(prefixes) + bytes(rng.randrange(256) for _ in range(n))
        suffix = rng.choice([".safetensors", ".pth", ".pt", ".bin", ".ckpt", ""])
        cases.append(Case("random", f"random #{i} ({len(data)} bytes)", data, suffix, "error", r"."))
    cases.append(Case("random", "text file", b"hello, not a checkpoint\n", ".pth", "error", "not a checkpoint"))
    cases.append(Case("random", "numpy array file", _npy_bytes(), ".pth", "error", "not a checkpoint"))
    return cases


def _npy_bytes() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.zeros(3, dtype=np.float32))
    return buf.getvalue()


def gen_zip(rng: random.Random) -> List[Case]:
    base = torch_bytes(tiny_state())
    members = zip_members(base)
    names = list(members)
    cases = [Case("zip", "valid", base, ".pt", "load"),
             Case("zip", "re-zipped by Python", zip_file(members), ".pt", "load")]
    for name in names:
        rest = {k: v for k, v in members.items() if k != name}
        essential = name.endswith(("data.pkl", "/version")) or "/data/" in name
        cases.append(Case("zip", f"missing {name}", zip_file(rest), ".pt", "error" if essential else "either",
                          r"data\.pkl|unreadable torch checkpoint"))
    extras = {
        "benign text": ("archive/notes.txt", b"hello"),
        "unused record": ("archive/data/999", b"\0" * 64),
        "path traversal name": ("../../evil.txt", b"x"),
        "absolute name": ("/tmp/evil.txt", b"x"),
        "long name": ("archive/" + "a" * 5000, b"x"),
        "second data.pkl with payload": ("archive/data.pkl",
                                         pickled(call_op("os", "system", ("echo pwned",), "reduce"))),
    }
    for label, (name, payload) in extras.items():
        m = dict(members)
        data = zip_file(m)
        buf = io.BytesIO(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name"
            with zipfile.ZipFile(buf, "a") as z:
                z.writestr(name, payload)
        cases.append(Case("zip", f"extra member: {label}", buf.getvalue(), ".pt", "either"))
    pkl = next(n for n in names if n.endswith("data.pkl"))
    for i in range(12):
        m = dict(members)
        m[pkl] = flip_bits(m[pkl], rng, rng.randint(1, 4))
        cases.append(Case("zip", f"data.pkl bit flips #{i}", zip_file(m), ".pt", "either"))
    for i in range(8):
        m = dict(members)
        m[pkl] = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 16, 200])))
        cases.append(Case("zip", f"data.pkl random #{i}", zip_file(m), ".pt", "error", r"torch checkpoint|refused"))
    record = next(n for n in names if "/data/" in n)
    for label, payload in {"short record": members[record][:3], "long record": members[record] + b"\0" * 8,
                           "empty record": b""}.items():
        m = dict(members)
        m[record] = payload
        cases.append(Case("zip", label, zip_file(m), ".pt", "error", r"unreadable torch checkpoint"))
    cases.append(Case("zip", "deflated members", zip_file(members, zipfile.ZIP_DEFLATED), ".pt", "either"))
    cases.append(Case("zip", "zip of text files", zip_file({"a.txt": b"a", "b/c.txt": b"c"}), ".pt", "error",
                      r"without a data\.pkl"))
    cases.append(Case("zip", "empty zip", zip_file({}), ".pt", "error", r"not a checkpoint|data\.pkl"))
    for _ in range(25):
        cut = rng.randrange(4, len(base))
        cases.append(Case("zip", f"truncated at {cut}", base[:cut], ".pt", "error",
                          r"corrupt torch zip|unreadable torch checkpoint|data\.pkl"))
    for i in range(80):
        cases.append(Case("zip", f"bit flips #{i}", flip_bits(base, rng, rng.randint(1, 5)), ".pt", "either"))
    cases.append(Case("zip", "record claims 4 GB in its local header", _lie_about_size(base, record, 22, 2**32 - 1),
                      ".pt", "either"))
    cases.append(Case("zip", "record claims 4 GB in the central directory",
                      _lie_about_size(base, record, 24, 2**32 - 1), ".pt", "error", r"claims|corrupt torch zip"))
    return cases


def _lie_about_size(data: bytes, member: str, field_offset: int, size: int) -> bytes:
    """Rewrite ``member``'s uncompressed-size field (local header offset 22, central directory 24)."""
    out = bytearray(data)
    signature = b"PK\x03\x04" if field_offset == 22 else b"PK\x01\x02"
    name_at = 30 if field_offset == 22 else 46
    pos = out.find(signature)
    while pos != -1:
        if out[pos + name_at:pos + name_at + len(member)] == member.encode():
            out[pos + field_offset:pos + field_offset + 4] = struct.pack("<I", min(size, 2**32 - 1))
        pos = out.find(signature, pos + 4)
    return bytes(out)


def gen_payloads(rng: random.Random, sentinel_dir: Path) -> List[Case]:
    cases = []
    i = 0
    combos = [(m, n, a, style) for m, n, a in SENTINEL_CALLS for style in CALL_STYLES]
    for module, name, args, style in combos:
        for container in rng.sample(CONTAINERS, 2):
            sentinel = str(sentinel_dir / f"pwned{i}")
            i += 1
            body = place(call_op(module, name, args(sentinel), style), rng.choice(PLACEMENTS))
            data, suffix = contain(body, container)
            cases.append(Case("payload", f"{module}.{name} via {style} in {container}", data, suffix, "error",
                              "never runs pickled code", sentinel))
    for module, name, args in OTHER_GLOBALS:
        for style in rng.sample(CALL_STYLES, 2):
            container = rng.choice(CONTAINERS)
            body = place(call_op(module, name, args, style), rng.choice(PLACEMENTS))
            data, suffix = contain(body, container)
            cases.append(Case("payload", f"{module}.{name} via {style} in {container}", data, suffix, "error",
                              "never runs pickled code"))
    cases.append(Case("payload", "whole pickled nn.Module", torch_bytes(Tiny()), ".pth", "error",
                      r"state_dict\(\)"))
    cases.append(Case("payload", "whole pickled nn.Module, legacy", torch_bytes(Tiny(), legacy=True), ".pth",
                      "error", r"state_dict\(\)"))
    return cases


def gen_structure(rng: random.Random) -> List[Case]:
    cases = []
    for depth in [5, 50, 500, 20000, 200000]:
        nested_dicts = (b"}" + frag("state_dict")) * depth + frag({}) + b"s" * depth
        nested_lists = b"]" * depth + b"a" * (depth - 1)
        for label, body in [("dicts", nested_dicts), ("lists", nested_lists)]:
            for container in ["legacy", "zip"]:
                data, suffix = contain(body, container)
                cases.append(Case("structure", f"{depth} nested {label} in {container}", data, suffix, "error",
                                  r"nested deeper|not a dict|empty"))
    self_dict = b"}q\x00" + frag("state_dict") + b"h\x00s"  # d = {}; d["state_dict"] = d
    self_list = b"]q\x00h\x00a"  # l = []; l.append(l)
    for label, body in [("dict containing itself", self_dict), ("list containing itself", self_list)]:
        for container in ["legacy", "zip"]:
            data, suffix = contain(body, container)
            cases.append(Case("structure", f"{label} in {container}", data, suffix, "error",
                              r"nested deeper|not a dict"))
    state = tiny_state()
    wrong_values = {
        "a string": "hello", "an int": 3, "a float": 0.5, "None": None, "a list of tensors": [torch.zeros(2)],
        "a tuple": (1, 2), "a dict": {"a": torch.zeros(1)}, "bytes": b"\0\1", "torch.Size": torch.Size([2, 3]),
        "torch.device": torch.device("cpu"), "a dtype": torch.float32, "a set": {1, 2}, "a complex": 1j,
    }
    for label, value in wrong_values.items():
        for legacy in (False, True):
            obj = {"state_dict": {**state, "fc.weight": value}}
            cases.append(Case("structure", f"fc.weight is {label} ({'legacy' if legacy else 'zip'})",
                              torch_bytes(obj, legacy), ".pth", "error", r"non-tensor|not a tensor|found no state"))
    tops = {"list": [state["fc.weight"]], "tensor": state["fc.weight"], "int": 7, "string": "weights",
            "None": None, "empty dict": {}, "dict of strings": {"a": "b"}, "OrderedDict of None": {"x": None},
            "int keys": {1: state["fc.weight"]}, "tuple keys": {(1, 2): state["fc.bias"]},
            "only an optimizer": {"optimizer": {"lr": 0.1}, "epoch": 3}}
    for label, obj in tops.items():
        cases.append(Case("structure", f"top level is {label}", torch_bytes(obj), ".pth", "error",
                          r"holds a|empty|found no state dict|non-string keys|non-tensor"))
    cases.append(Case("structure", "Parameter objects", torch_bytes({k: nn.Parameter(v, requires_grad=False)
                                                                     if v.is_floating_point() else v
                                                                     for k, v in state.items()}), ".pth", "load"))
    shared = torch.rand(200)
    views = {k: (shared[: v.numel()].view(v.shape) if v.is_floating_point() else v) for k, v in state.items()}
    cases.append(Case("structure", "views of one storage", torch_bytes(views), ".pth", "load"))
    return cases


def gen_contents(rng: random.Random) -> List[Case]:
    state = tiny_state()
    variants: List[Tuple[str, Dict[str, Any], str, str]] = []

    def with_(key: str, value: Any) -> Dict[str, Any]:
        return {**state, key: value}

    for key in ["conv.weight", "fc.weight", "bn.running_var", "fc.bias"]:
        shape = tuple(state[key].shape)
        if shape[::-1] != shape:
            variants.append((f"{key} transposed", with_(key, state[key].reshape(shape[::-1]).contiguous()), "error",
                             "mis-shaped"))
        variants += [
            (f"{key} extra dim", with_(key, state[key].unsqueeze(0)), "error", "mis-shaped"),
            (f"{key} scalar", with_(key, torch.tensor(1.0)), "error", "mis-shaped"),
            (f"{key} empty", with_(key, torch.zeros(0)), "error", "mis-shaped"),
        ]
        for dtype in [torch.int64, torch.int8, torch.uint8, torch.bool, torch.int32]:
            variants.append((f"{key} as {dtype}", with_(key, state[key].to(dtype)), "error", "non-floating"))
        for dtype in [torch.float64, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2]:
            variants.append((f"{key} as {dtype}", with_(key, state[key].to(dtype)), "load", ""))
        for label, bad in [("NaN", float("nan")), ("inf", float("inf")), ("-inf", -float("inf"))]:
            value = state[key].clone()
            value.view(-1)[rng.randrange(value.numel())] = bad
            variants.append((f"{key} with {label}", with_(key, value), "error", "NaN or infinite"))
        variants.append((f"{key} float64 overflowing float32", with_(key, state[key].double() * 1e300), "error",
                         "NaN or infinite"))
    variants += [
        ("num_batches_tracked NaN", with_("bn.num_batches_tracked", torch.tensor(float("nan"))), "error",
         "NaN or infinite"),
        ("num_batches_tracked float", with_("bn.num_batches_tracked", torch.tensor(3.0)), "load", ""),
        ("num_batches_tracked absent", {k: v for k, v in state.items() if "num_batches" not in k}, "load", ""),
        ("missing fc.bias", {k: v for k, v in state.items() if k != "fc.bias"}, "error", "missing"),
        ("extra key", with_("head.weight", torch.zeros(2)), "error", "unexpected"),
        ("all keys renamed", {f"x{k}": v for k, v in state.items()}, "error", "another architecture|missing"),
        ("150000 module. prefixes", with_("module." * 150000 + "w", torch.zeros(1)), "error", "unexpected"),
        ("a million-character key", with_("x" * 1000000, torch.zeros(1)), "error", "unexpected"),
        ("prefixed twice", {f"module._orig_mod.{k}": v for k, v in state.items()}, "load", ""),
    ]
    cases = []
    for label, sd, expect, match in variants:
        cases.append(Case("contents", f"{label} (zip)", torch_bytes(sd), ".pth", expect, match))
        if rng.random() < 0.3 and not any(v.dtype.itemsize == 1 and v.is_floating_point() for v in sd.values()):
            # (torch itself cannot read float8 tensors back from the legacy format)
            cases.append(Case("contents", f"{label} (legacy)", torch_bytes(sd, legacy=True), ".pth", expect, match))
        if all(v.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                           torch.int8, torch.uint8, torch.bool, torch.float8_e4m3fn, torch.float8_e5m2)
               for v in sd.values()):
            cases.append(Case("contents", f"{label} (safetensors)", safetensors_file(sd), ".safetensors", expect,
                              match))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized, CSR and nested tensors announce their beta status
        odd = {
            "complex weights": with_("fc.weight", state["fc.weight"].to(torch.complex64)),
            "quantized weights": with_("fc.weight", torch.quantize_per_tensor(state["fc.weight"], 0.1, 0,
                                                                              torch.qint8)),
            "sparse weights": with_("fc.weight", state["fc.weight"].to_sparse()),
            "sparse CSR weights": with_("fc.weight", state["fc.weight"].to_sparse_csr()),
            "meta-device weights": with_("fc.weight", torch.zeros(3, 4, device="meta")),
            "nested tensor": with_("fc.weight", torch.nested.nested_tensor([torch.zeros(4), torch.zeros(3)])),
        }
        for label, sd in odd.items():
            cases.append(Case("contents", label, torch_bytes(sd), ".pth", "error",
                              r"non-floating|layout|meta device|nested"))
    return cases


def gen_layouts(rng: random.Random) -> List[Case]:
    """Tensors whose strides or storage show more values than the file stores: expanded (stride-0) and
    overlapping views, in zip and legacy files, float32 and float64, under weights and BatchNorm statistics, and
    mis-shaped NaN tensors in safetensors files (the shape is refused before any value is read)."""
    state = tiny_state()
    cases = []
    layouts = {
        "expanded rows": lambda t: t.reshape(-1)[:1].expand(rng.choice([3, 64, 4096]), 4),
        "expanded columns": lambda t: t[:, :1].expand(3, rng.choice([4, 9, 5000])),
        "expanded to a billion": lambda t: t.reshape(-1)[:1].expand(1 << 15, 1 << 15),
        "overlapping rows": lambda t: t.reshape(-1).as_strided((3, 4), (1, 1)),
        "overlapping windows": lambda t: t.reshape(-1).as_strided((3, 3), (2, 1)),
    }
    for key in ["fc.weight", "bn.running_var", "extra"]:
        for label, make in layouts.items():
            for dtype in (torch.float32, torch.float64):
                base = state["fc.weight"].to(dtype)
                value = make(base)
                if key == "bn.running_var":
                    value = value.reshape(-1)[:1].expand(4) if label.startswith("expanded") else \
                        base.reshape(-1).as_strided((4,), (0,))
                sd = {**state, key: value}
                for legacy in (False, True):
                    form = "legacy" if legacy else "zip"
                    cases.append(Case("layout", f"{key} {label}, {dtype} ({form})", torch_bytes(sd, legacy), ".pth",
                                      "error", r"expanded view|overlapping strides"))
    for key in ["fc.weight", "bn.running_var"]:
        nan = torch.full((rng.choice([5, 17, 300]),), float("nan"))
        cases.append(Case("layout", f"{key} mis-shaped and NaN (safetensors)", safetensors_file({**state, key: nan}),
                          ".safetensors", "error", r"mis-shaped"))
    return cases


def gen_size_claims() -> List[Case]:
    """Files whose few bytes ask for terabytes; each must be refused by a check that runs before allocating."""
    cases = []
    floats = struct.pack("<4f", 1, 2, 3, 4)
    for numel in [10**9, 10**12, 2**60]:
        obj = {"fc.weight": _TensorRef(_StorageRef("0", numel), (4,), (1,))}
        data = legacy_file(pickled(torch_pickle(obj, False)[2:-1]), ("0",), struct.pack("<q", 4) + floats)
        cases.append(Case("claims", f"legacy storage of {numel} floats", data, ".pth", "error",
                          "refused before allocating"))
        data = torch_zip(torch_pickle(obj, True), {"0": floats})
        cases.append(Case("claims", f"zip storage of {numel} floats", data, ".pt", "error",
                          "does not match expected size"))
        obj = {"fc.weight": _TensorRef(_StorageRef("0", 4), (numel,), (1,))}
        cases.append(Case("claims", f"zip tensor of {numel} elements on 4 floats",
                          torch_zip(torch_pickle(obj, True), {"0": floats}), ".pt", "error", "unreadable torch"))
    many = {f"w{i}": _TensorRef(_StorageRef(str(i), 10**8), (4,), (1,)) for i in range(50)}
    data = legacy_file(pickled(torch_pickle(many, False)[2:-1]), tuple(str(i) for i in range(50)))
    cases.append(Case("claims", "legacy: 50 storages of 400 MB each", data, ".pth", "error",
                      "refused before allocating"))
    base = torch_bytes(tiny_state())
    record = next(n for n in zip_members(base) if "/data/" in n)
    cases.append(Case("claims", "zip record claiming 4 GB", _lie_about_size(base, record, 24, 2**32 - 1), ".pt",
                      "error", "claims|corrupt torch zip"))
    cases.append(Case("claims", "safetensors header of 1 TB", struct.pack("<Q", 2**40) + b"{}", ".safetensors",
                      "error", "header length"))
    header = {"w": {"dtype": "F32", "shape": [2**18, 2**18], "data_offsets": [0, 2**38]}}
    cases.append(Case("claims", "safetensors tensor of 256 GB", join_safetensors(header, b"\0" * 16),
                      ".safetensors", "error", "outside"))
    for side in (1 << 15, 1 << 20):
        for dtype in (torch.float32, torch.float64):
            obj = {"weight": torch.zeros(1, dtype=dtype).expand(side, side)}
            cases.append(Case("claims", f"zip: an expanded {side}x{side} {dtype}", torch_bytes(obj), ".pt", "error",
                              "expanded view"))
            cases.append(Case("claims", f"legacy: an expanded {side}x{side} {dtype}", torch_bytes(obj, legacy=True),
                              ".pt", "error", "expanded view"))
    meta = {"architecture": "custom_cnn", "kwargs": json.dumps({"num_classes": 10**9})}
    cases.append(Case("config", "config asking for 10**9 classes",
                      safetensors_file(encdec.custom_cnn(num_classes=2).state_dict(), meta), ".safetensors", "error",
                      "refused before building"))
    return cases


def gen_configs() -> List[Case]:
    """safetensors files whose encdec metadata is hostile; loaded with ``from_pretrained``."""
    state = encdec.custom_cnn(num_classes=2).state_dict()
    configs = {
        "kwargs not JSON": {"architecture": "custom_cnn", "kwargs": "{not json"},
        "kwargs a list": {"architecture": "custom_cnn", "kwargs": "[1, 2]"},
        "kwargs deeply nested": {"architecture": "custom_cnn", "kwargs": "[" * 100000 + "]" * 100000},
        "unknown architecture": {"architecture": "os.system", "kwargs": "{}"},
        "unknown argument": {"architecture": "custom_cnn", "kwargs": '{"evil": 1}'},
        "negative classes": {"architecture": "custom_cnn", "kwargs": '{"num_classes": -1}'},
        "string classes": {"architecture": "custom_cnn", "kwargs": '{"num_classes": "x"}'},
        "class names not JSON": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}', "class_names": "[x"},
        "wrong class count": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 7}'},
        "training size 200000": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}',
                                 "preprocessing": '{"size": [200000, 200000]}'},
        "std of zero": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}', "std": "[0, 0.2, 0.2]",
                        "mean": "[0.5, 0.5, 0.5]"},
        "NaN mean": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}', "mean": "[NaN, 0, 0]"},
        "mean a string": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}', "mean": '"abc"'},
        "class names a string": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}', "class_names": '"ab"'},
        "too few class names": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}', "class_names": '["a"]'},
        "palette of strings": {"architecture": "custom_cnn", "kwargs": '{"num_classes": 2}',
                               "preprocessing": '{"palette": [["a", "b", "c"]]}'},
    }
    cases = [Case("config", label, safetensors_file(state, meta), ".safetensors", "error",
                  r"config|JSON|does not fit|architecture") for label, meta in configs.items()]
    meta = {"architecture": "custom_cnn", "kwargs": json.dumps({"num_classes": 2, "weights": "/etc/passwd",
                                                                "encoder_weights": "/etc/passwd"})}
    cases.append(Case("config", "file-naming arguments (left out)", safetensors_file(state, meta), ".safetensors",
                      "load"))
    return cases


def build_cases(rng: random.Random, sentinel_dir: Path) -> List[Case]:
    return (gen_safetensors(rng) + gen_random_bytes(rng) + gen_zip(rng) + gen_payloads(rng, sentinel_dir)
            + gen_structure(rng) + gen_contents(rng) + gen_layouts(rng) + gen_size_claims() + gen_configs())


# ----------------------------------------------------------------------------------------------- running


def attempt(path: Path, kind: str, strict: bool = True) -> Tuple[str, str]:
    """Load ``path`` as the fuzz target does; returns ``("load" | "error" | "escape", message)``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "config":
                encdec.from_pretrained(path)
            else:
                encdec.load_weights(Tiny(), path, strict=strict)
            meta = read_metadata(path)
        if not isinstance(meta, dict):
            return "escape", f"read_metadata returned a {type(meta).__name__}"
        return "load", ""
    except encdec.WeightsError as e:
        return "error", str(e)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: B036 - anything else (SystemExit included) is an escape
        return "escape", f"{type(e).__name__}: {str(e)[:300]}"


def run_cases(cases: List[Case], directory: Path) -> Dict[str, Any]:
    failures: List[str] = []
    outcomes: Dict[str, int] = collections.Counter()
    for i, case in enumerate(cases):
        path = directory / f"case{i:04d}{case.suffix}"
        path.write_bytes(case.data)
        runs = [True, False] if case.expect != "error" or case.kind == "contents" else [True]
        for strict in runs:
            outcome, message = attempt(path, case.kind, strict)
            outcomes[outcome] += 1
            where = f"[{case.kind}] {case.label} (strict={strict})"
            if outcome == "escape":
                failures.append(f"{where}: ESCAPED {message}")
            elif outcome == "error":
                if path.name not in message:
                    failures.append(f"{where}: message does not name the file: {message[:200]}")
                if len(message) > MAX_MESSAGE:
                    failures.append(f"{where}: message of {len(message)} characters")
                if strict and case.expect == "error" and case.match and not re.search(case.match, message):
                    failures.append(f"{where}: message does not match {case.match!r}: {message[:300]}")
                if case.expect == "load" and strict:
                    failures.append(f"{where}: a valid file was refused: {message[:300]}")
            elif strict and case.expect == "error":
                failures.append(f"{where}: loaded, but must be refused")
            if case.sentinel and os.path.exists(case.sentinel):
                failures.append(f"{where}: PAYLOAD RAN, {case.sentinel} exists")
        path.unlink()
    return {"failures": failures, "outcomes": dict(outcomes)}


@pytest.mark.slow
def test_fuzzed_checkpoints_end_in_weights_error_or_load(tmp_path):
    sentinel_dir = tmp_path / "sentinels"
    sentinel_dir.mkdir()
    files = tmp_path / "files"
    files.mkdir()
    start = time.perf_counter()
    cases = build_cases(random.Random(SEED), sentinel_dir)
    result = run_cases(cases, files)
    elapsed = time.perf_counter() - start
    kinds = collections.Counter(c.kind for c in cases)
    print(f"\nfuzz seed {SEED}: {len(cases)} files {dict(kinds)}; outcomes {result['outcomes']}; {elapsed:.1f} s")
    assert len(cases) >= MIN_CASES, f"only {len(cases)} generated files"
    assert not result["failures"], f"{len(result['failures'])} failures:\n" + "\n".join(result["failures"][:40])
    assert sorted(os.listdir(sentinel_dir)) == [], "a payload created files"
    assert sum(1 for c in cases if c.sentinel) >= 150
    # The generator must produce both outcomes, or it is not testing the boundary between them.
    assert result["outcomes"].get("load", 0) >= 20 and result["outcomes"].get("error", 0) >= MIN_CASES


def test_payloads_are_live(tmp_path):
    """Control: the payload files do run their code under a plain ``pickle.load``, so their refusal means something."""
    picks = [("os", "system", "reduce"), ("builtins", "eval", "stack_reduce"), ("subprocess", "call", "inst"),
             ("builtins", "open", "obj"), ("builtins", "exec", "build")]
    calls = {(m, n): a for m, n, a in SENTINEL_CALLS}
    script = "import pickle, sys\nfor p in sys.argv[1:]:\n    pickle.load(open(p, 'rb'))\n"
    paths, sentinels = [], []
    for i, (module, name, style) in enumerate(picks):
        sentinel = tmp_path / f"ran{i}"
        data, _ = contain(place(call_op(module, name, calls[(module, name)](str(sentinel)), style), "value"), "raw")
        path = tmp_path / f"p{i}.pkl"
        path.write_bytes(data)
        paths.append(str(path))
        sentinels.append(sentinel)
    subprocess.run([sys.executable, "-c", script, *paths], check=True, capture_output=True, timeout=60)
    assert [s.exists() for s in sentinels] == [True] * len(picks)
    for path in paths:
        with pytest.raises(encdec.WeightsError, match="never runs pickled code"):
            encdec.load_weights(Tiny(), path)


_MEMORY_SCRIPT = r"""
import json, resource, sys, warnings
import torch
import encdec

paths = sys.argv[1:]
torch.set_num_threads(1)  # no thread pool (8 MB of stack per thread) to grow under the limit
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
limit = vm + 768 * 1024 * 1024  # any allocation beyond this fails, so a late refusal shows as an allocator error
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = []
for p in paths:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if p.endswith(".config.safetensors"):
                encdec.from_pretrained(p)
            else:
                encdec.load_weights(torch.nn.Linear(4, 3), p)
        results.append(["load", ""])
    except encdec.WeightsError as e:
        results.append(["error", str(e)])
    except BaseException as e:
        results.append(["escape", type(e).__name__ + ": " + str(e)[:300]])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"results": results, "rss_growth_kb": after - before}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses RLIMIT_AS and /proc")
def test_size_claims_are_refused_before_allocating(tmp_path):
    cases = gen_size_claims()
    paths = []
    for i, case in enumerate(cases):
        suffix = ".config.safetensors" if case.kind == "config" else case.suffix
        path = tmp_path / f"claim{i}{suffix}"
        path.write_bytes(case.data)
        paths.append(str(path))
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, *paths], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for case, (outcome, message) in zip(cases, report["results"]):
        assert outcome == "error", f"{case.label}: {outcome} {message}"
        assert "can't allocate" not in message and "MemoryError" not in message, f"{case.label}: {message}"
        assert re.search(case.match, message), f"{case.label}: {message}"
    assert report["rss_growth_kb"] < 200 * 1024, f"peak memory grew by {report['rss_growth_kb'] // 1024} MB"


_PEAK_SCRIPT = r"""
import json, sys, warnings
import torch
import encdec

def peak_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

model = torch.nn.Linear(1 << 15, 1 << 15, device="meta")
model.weight = torch.nn.Parameter(torch.zeros(3, 4))  # the key exists; its own shape differs from the file's
before = peak_kb()
results = []
for p in sys.argv[1:]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encdec.load_weights(model, p, strict=False)
        results.append(["load", ""])
    except encdec.WeightsError as e:
        results.append(["error", str(e)])
    except BaseException as e:
        results.append(["escape", type(e).__name__ + ": " + str(e)[:300]])
print(json.dumps({"results": results, "peak_growth_kb": peak_kb() - before}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_expanded_tensors_are_refused_by_layout_with_bounded_memory(tmp_path):
    """A 2 MB checkpoint whose model key holds ``torch.zeros(1).expand(1 << 15, 1 << 15)`` (4 GiB once
    materialised; 8 GiB in float64) is refused by name before any value check reads it: peak memory, measured
    in a subprocess, grows by far less than 1 GB."""
    paths = []
    for legacy in (False, True):
        for dtype in (torch.float32, torch.float64):
            for key in ("weight", "bias"):
                state = {key: torch.zeros(1, dtype=dtype).expand(1 << 15, 1 << 15), "padding": torch.rand(500_000)}
                path = tmp_path / f"{key}-{dtype}-{'legacy' if legacy else 'zip'}.pth"
                path.write_bytes(torch_bytes(state, legacy))
                assert 1_900_000 < path.stat().st_size < 2_200_000
                paths.append(str(path))
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, *paths], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{len(paths)} expanded-tensor files refused; peak memory grew by {report['peak_growth_kb']} KB")
    for path, (outcome, message) in zip(paths, report["results"]):
        assert outcome == "error", (path, outcome, message)
        assert Path(path).name in message and "is an expanded view (stride 0 along dimension 0 of size 32768)" in \
            message, message
    assert report["peak_growth_kb"] < 1024 * 1024, f"peak memory grew by {report['peak_growth_kb'] // 1024} MB"


def test_layout_checks_name_the_key_and_the_problem():
    from encdec.weights.tensor_layout import check_layouts

    flat = torch.arange(12.0)
    check_layouts({"a": flat.view(3, 4), "b": flat.view(3, 4).t(), "c": flat[::2], "d": torch.zeros(0)}, "f")
    cases = {
        "expanded view (stride 0 along dimension 1 of size 5)": torch.zeros(2, 1).expand(2, 5),
        "overlapping strides [1, 1]": flat.as_strided((3, 4), (1, 1)),
        "of which the tensors stored there use 12": torch.zeros(5_000_000)[:3],
    }
    for problem, value in cases.items():
        with pytest.raises(encdec.WeightsError, match=re.escape(f"f: tensor 'w' of shape {list(value.shape)}")) as info:
            check_layouts({"w": value}, "f")
        assert problem in str(info.value)


def test_a_mis_shaped_tensor_is_refused_by_shape_before_its_values_are_read():
    model = Tiny()
    state = {**model.state_dict(), "bn.running_var": torch.full((7,), -1.0), "fc.weight": torch.full((2, 2), 1e300,
                                                                                                      dtype=torch.float64)}
    with pytest.raises(encdec.WeightsError, match=r"mis-shaped: bn\.running_var \(checkpoint \[7\]") as info:
        encdec.load_state_dict(model, state)
    assert "infinite" not in str(info.value) and "never negative" not in str(info.value)
    with pytest.warns(UserWarning, match="loaded"):
        report = encdec.load_state_dict(Tiny(), state, strict=False)  # the mis-shaped keys are skipped, unread
    assert {k for k, _, _ in report.mismatched} == {"bn.running_var", "fc.weight"}


# ----------------------------------------------------------------------------------------------- hypothesis

_dtypes = st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "X", "", "f32"])
_dims = st.one_of(st.integers(-3, 6), st.integers(2**31, 2**70), st.floats(allow_nan=True), st.text(max_size=2))
_entries = st.fixed_dictionaries(
    {},
    optional={
        "dtype": _dtypes,
        "shape": st.one_of(st.lists(_dims, max_size=4), st.integers(), st.none()),
        "data_offsets": st.one_of(st.lists(st.integers(-8, 80), min_size=0, max_size=3),
                                  st.lists(st.integers(0, 2**66), min_size=2, max_size=2), st.text(max_size=3)),
        "extra": st.integers(),
    },
)
_headers = st.dictionaries(st.sampled_from(["fc.weight", "fc.bias", "conv.weight", "__metadata__", "x", ""]),
                           st.one_of(_entries, st.integers(), st.text(max_size=4), st.none()), max_size=4)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(header=_headers, data_len=st.integers(0, 96), declared_extra=st.integers(-4, 4))
def test_generated_safetensors_headers(header, data_len, declared_extra):
    """Hypothesis-built headers: mixtures of valid and invalid dtypes, shapes and offsets, and lying lengths."""
    import tempfile

    text = json.dumps(header, allow_nan=True).encode()
    data = struct.pack("<Q", max(0, len(text) + declared_extra)) + text + bytes(range(data_len % 256))[:data_len]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "h.safetensors"
        path.write_bytes(data)
        for strict in (True, False):
            outcome, message = attempt(path, "safetensors", strict)
            assert outcome != "escape", message
            assert outcome == "load" or path.name in message
