"""Hostile ONNX files for ``encdec.OnnxPredictor``: metadata of the wrong type or range in every field, and graphs
with loops (a ``Loop`` of 10**12 iterations), each refused by name before the runtime runs anything. The files are
built with ``onnx.helper`` in the test's folder: a graph of a few nodes whose one input (the images) gives
``CLASSES`` output channels."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

import encdec
from encdec.deployment import OnnxModelError, OnnxPredictor

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

CLASSES = 3
GOOD = {"format": 1, "architecture": "tiny", "num_classes": CLASSES,
        "input_spec": {"channels": 3, "multiple": 4, "min_size": 4, "fixed": None, "reference": 16},
        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "class_names": ["a", "b", "c"]}


def _images_value(name: str = "images") -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, "H", "W"])


def _logits_value(channels: object = CLASSES) -> object:
    return helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", channels, "H", "W"])


def _model(nodes, *, inputs=None, outputs=None, initializers=(), functions=(), metadata=None):
    graph = helper.make_graph(nodes, "hostile", inputs if inputs is not None else [_images_value()],
                              outputs if outputs is not None else [_logits_value()], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], functions=list(functions))
    model.ir_version = 8
    if metadata is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "encdec", metadata if isinstance(metadata, str) else json.dumps(metadata)
    return model


def _identity_model(metadata=None):
    """``logits = 2 * images``: three channels in, three classes out."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    return _model([helper.make_node("Mul", ["images", "two"], ["logits"])], initializers=[two], metadata=metadata)


def _save(model, path):
    onnx.save(model, str(path))
    return path


def _metadata(**changes):
    metadata = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key.startswith("input_spec__"):
            if isinstance(metadata["input_spec"], dict):  # not when the pair also replaced the whole spec
                metadata["input_spec"][key[len("input_spec__"):]] = value
        elif value is _DROP:
            metadata.pop(key)
        else:
            metadata[key] = value
    return metadata


_DROP = object()


def test_a_file_with_valid_metadata_runs_and_carries_it(tmp_path):
    predictor = OnnxPredictor(_save(_identity_model(GOOD), tmp_path / "good.onnx"))
    assert predictor.num_classes == CLASSES and predictor.input_spec.multiple == 4
    assert predictor.encdec_config == {"architecture": "tiny", "mean": [0.5] * 3, "std": [0.25] * 3,
                                       "class_names": ["a", "b", "c"]}
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(predictor(x), 2 * x)


HOSTILE_METADATA = [
    ("[1, 2]", "encdec metadata is a list, not an object of fields"),
    ("{", "its 'encdec' metadata is not valid JSON"),
    ("[" * 100000 + "]" * 100000, "its 'encdec' metadata is JSON nested too deeply"),
    (_metadata(format=99), "'format' must be 1 .*got 99"),
    (_metadata(architecture=5), "'architecture' must be a model name, got 5"),
    (_metadata(num_classes=-1), "'num_classes' must be a positive whole number, got -1"),
    (_metadata(num_classes=0), "'num_classes' must be a positive whole number, got 0"),
    (_metadata(num_classes="3"), "'num_classes' must be a positive whole number, got '3'"),
    (_metadata(num_classes=True), "'num_classes' must be a positive whole number, got True"),
    (_metadata(num_classes=2.5), "'num_classes' must be a positive whole number, got 2.5"),
    (_metadata(num_classes=5, class_names=list("abcde")), "'num_classes' must be the graph's 3 output channels"),
    (_metadata(input_spec="x"), "'input_spec' must be an object of channels, multiple, min_size, fixed, reference"),
    (_metadata(input_spec__bogus=1), "'input_spec' must be an object of"),
    (_metadata(input_spec__multiple=-16), "'input_spec.multiple' must be a whole number from 1 to 16384, got -16"),
    (_metadata(input_spec__multiple=0), "'input_spec.multiple' must be a whole number from 1 to 16384, got 0"),
    (_metadata(input_spec__multiple=10**9), "'input_spec.multiple' must be a whole number from 1 to 16384"),
    (_metadata(input_spec__multiple=16.5), "'input_spec.multiple' must be a whole number"),
    (_metadata(input_spec__min_size="4"), "'input_spec.min_size' must be a whole number"),
    (_metadata(input_spec__fixed=0), "'input_spec.fixed' must be a whole number from 1 to 16384 or null, got 0"),
    (_metadata(input_spec__channels=None), "'input_spec.channels' must be a whole number"),
    (_metadata(input_spec__channels=1), "'input_spec.channels' must be the graph's 3 input channels, got 1"),
    (_metadata(input_spec__reference=[224]), "'input_spec.reference' must be a whole number"),
    (_metadata(mean="abc"), "'mean' must be a list of 1 to 4 finite numbers .*got 'abc'"),
    (_metadata(mean=[float("inf"), 0, 0]), "'mean' must be a list of 1 to 4 finite numbers"),
    (_metadata(mean=[0.5] * 5), "'mean' must be a list of 1 to 4 finite numbers"),
    (_metadata(std=[0.2, 0, 0.2]), "'std' must be positive numbers"),
    (_metadata(std=[-1, -1, -1]), "'std' must be positive numbers"),
    (_metadata(std=[float("nan")] * 3), "'std' must be a list of 1 to 4 finite numbers"),
    (_metadata(std=[0.2, 0.2]), r"'std' must be as long as 'mean' \(3 values\)"),
    (_metadata(std={"r": 1}), "'std' must be a list of 1 to 4 finite numbers"),
    (_metadata(class_names="cat"), "'class_names' must be a list of strings, one per class, got 'cat'"),
    (_metadata(class_names=["a", 1, "c"]), "'class_names' must be a list of strings"),
    (_metadata(class_names=["a", "b"]), "'class_names' must be 3 names, one per output"),
    (_metadata(num_classes=_DROP, class_names=["a"] * 7), "'class_names' must be 3 names, one per output"),
]


@pytest.mark.parametrize("metadata, problem", HOSTILE_METADATA,
                         ids=[f"{i}" for i in range(len(HOSTILE_METADATA))])
def test_hostile_metadata_is_refused_by_field(tmp_path, metadata, problem):
    path = _save(_identity_model(metadata), tmp_path / "hostile.onnx")
    with pytest.raises(OnnxModelError, match=f"hostile.onnx': .*{problem}"):
        OnnxPredictor(path)


def test_a_graph_that_does_not_take_the_size_its_metadata_promises_is_a_named_error(tmp_path):
    """Metadata saying any multiple of 4 for a graph fixed at 8x8: predict pads a 12x12 image to 12x12, and the
    runtime's refusal is named, not raised raw."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    fixed = _model([helper.make_node("Mul", ["images", "two"], ["logits"])], initializers=[two], metadata=GOOD,
                   inputs=[helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])])
    predictor = OnnxPredictor(_save(fixed, tmp_path / "fixed.onnx"))
    assert predictor.predict(torch.rand(3, 8, 8)).shape == (8, 8)
    with pytest.raises(OnnxModelError, match=r"fixed.onnx': ONNX Runtime cannot run its graph on a batch of shape "
                                             r"\(1, 3, 12, 12\)"):
        predictor.predict(torch.rand(3, 12, 12))


def test_refused_metadata_is_a_value_error_the_command_line_reports():
    assert issubclass(OnnxModelError, ValueError) and encdec.OnnxModelError is OnnxModelError


# ---------------------------------------------------------------------------------------------- loops


def _loop_model(trip_count: int, *, name: str = "forever", op_type: str = "Loop", metadata=GOOD):
    """``logits = images + (sum over trip_count iterations of 1)``, the count a constant of the file."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    initializers = [helper.make_tensor("trips", TensorProto.INT64, [], [trip_count]),
                    helper.make_tensor("go", TensorProto.BOOL, [], [True]),
                    helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    nodes = [helper.make_node("Loop", ["trips", "go", "zero"], ["total"], name=name, body=body),
             helper.make_node("Add", ["images", "total"], ["logits"])]
    return _model(nodes, initializers=initializers, metadata=metadata)


def test_the_loop_graph_is_valid_and_runs_when_short(tmp_path):
    """The refused file below differs from this one only by its trip count: ONNX Runtime runs this one."""
    import onnxruntime

    model = _loop_model(3)
    onnx.checker.check_model(model, full_check=True)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 2, 2), np.float32)
    assert np.array_equal(session.run(None, {"images": x})[0], x + 3)


def test_a_loop_of_10_to_the_12_iterations_is_refused_by_name(tmp_path):
    path = _save(_loop_model(10**12), tmp_path / "loop.onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    with pytest.raises(OnnxModelError, match="loop.onnx': node 'forever' is a Loop, which repeats its body"):
        OnnxPredictor(path)
    with pytest.raises(OnnxModelError, match="node 'forever' is a Loop"):
        OnnxPredictor(path, backend="openvino")  # refused before the runtime is even imported


_REFUSE_IN_A_SUBPROCESS = r"""
import sys, warnings
from encdec.deployment import OnnxModelError, OnnxPredictor
try:
    OnnxPredictor(sys.argv[1]).predict(__import__("torch").rand(3, 8, 8))
    print("RAN")
except OnnxModelError as error:
    print("REFUSED", error)
"""


@pytest.mark.slow  # a fresh interpreter importing torch: several seconds
def test_the_loop_file_is_refused_before_it_runs_in_a_subprocess(tmp_path):
    """Refused, not run: the subprocess ends well within its limit (a run of 10**12 iterations would not)."""
    path = _save(_loop_model(10**12), tmp_path / "loop.onnx")
    done = subprocess.run([sys.executable, "-c", _REFUSE_IN_A_SUBPROCESS, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("REFUSED") and "node 'forever' is a Loop" in done.stdout


def test_loops_are_found_in_subgraphs_functions_and_scans(tmp_path):
    loop = _loop_model(10**12, name="inner").graph.node[0]
    trips = _loop_model(1).graph.initializer
    branch = helper.make_graph([loop, helper.make_node("Add", ["images", "total"], ["out"])], "then", [],
                               [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    plain = helper.make_graph([helper.make_node("Identity", ["images"], ["out2"])], "else", [],
                              [helper.make_tensor_value_info("out2", TensorProto.FLOAT, None)])
    nested = _model([helper.make_node("If", ["go"], ["logits"], name="choose", then_branch=branch,
                                      else_branch=plain)], initializers=trips, metadata=GOOD)
    with pytest.raises(OnnxModelError, match="node 'inner' is a Loop"):
        OnnxPredictor(_save(nested, tmp_path / "nested.onnx"))

    scan_body = helper.make_graph([helper.make_node("Identity", ["s"], ["t"])], "scan_body",
                                  [helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
                                  [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    scan = _model([helper.make_node("Scan", ["images"], ["logits"], body=scan_body, num_scan_inputs=1)],
                  metadata=GOOD)
    with pytest.raises(OnnxModelError, match=r"node #0 \(unnamed\) is a Scan"):
        OnnxPredictor(_save(scan, tmp_path / "scan.onnx"))

    function = helper.make_function("local", "repeat", ["x"], ["y"],
                                    [helper.make_node("Loop", ["x", ""], [], name="in_function",
                                                      body=helper.make_graph([], "b", [], []))],
                                    [helper.make_opsetid("", 17)])
    with_function = _model([helper.make_node("repeat", ["images"], ["logits"], domain="local")],
                           functions=[function], metadata=GOOD)
    with_function.opset_import.append(helper.make_opsetid("local", 1))
    with pytest.raises(OnnxModelError, match="node 'in_function' is a Loop"):
        OnnxPredictor(_save(with_function, tmp_path / "function.onnx"))


def test_graphs_of_other_inputs_or_no_output_are_refused(tmp_path):
    none_in = _model([helper.make_node("Constant", [], ["logits"], value=helper.make_tensor(
        "c", TensorProto.FLOAT, [1], [0.0]))], inputs=[], metadata=GOOD)
    with pytest.raises(OnnxModelError, match="the graph has 0 inputs and 1 outputs; OnnxPredictor runs graphs of one"):
        OnnxPredictor(_save(none_in, tmp_path / "no_input.onnx"))
    two_in = _model([helper.make_node("Add", ["images", "more"], ["logits"])],
                    inputs=[_images_value(), _images_value("more")], metadata=GOOD)
    with pytest.raises(OnnxModelError, match="the graph has 2 inputs"):
        OnnxPredictor(_save(two_in, tmp_path / "two_inputs.onnx"))
    no_out = _model([helper.make_node("Identity", ["images"], ["unused"])], outputs=[], metadata=GOOD)
    with pytest.raises(OnnxModelError, match="and 0 outputs"):
        OnnxPredictor(_save(no_out, tmp_path / "no_output.onnx"))


def test_tensors_stored_in_other_files_are_never_followed(tmp_path):
    model = _identity_model(GOOD)
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two"))  # raw bytes
    onnx.save_model(model, str(tmp_path / "external.onnx"), save_as_external_data=True, location="weights.bin",
                    size_threshold=0)  # the file's tensor 'two' points at weights.bin (it could name any path)
    with pytest.raises(OnnxModelError, match="tensor 'two' is stored in another file .* does not follow"):
        OnnxPredictor(tmp_path / "external.onnx")


def test_a_graph_the_runtime_cannot_load_is_a_named_error(tmp_path):
    unknown = _model([helper.make_node("NoSuchOperator", ["images"], ["logits"])], metadata=GOOD)
    with pytest.raises(OnnxModelError, match="unknown.onnx': ONNX Runtime cannot load its graph"):
        OnnxPredictor(_save(unknown, tmp_path / "unknown.onnx"))


# ---------------------------------------------------------------------------------------------- generated files


_VALUES = [None, True, False, 0, -1, 1, 2.5, -1e308, 1e308, 10**30, "", "x" * 10000, [], [0], [-1, -1, -1],
           [float("nan")] * 3, [1e-300] * 3, [0.5] * 3, [[0.5]] * 3, {}, {"a": 1}, ["a", "b", "c"], ["a"] * 70000]
_FIELDS = ["format", "architecture", "num_classes", "input_spec", "mean", "std", "class_names",
           "input_spec__channels", "input_spec__multiple", "input_spec__min_size", "input_spec__fixed",
           "input_spec__reference"]


def test_generated_metadata_ends_in_a_named_error_or_a_predictor_that_runs(tmp_path):
    """Every field given every kind of value (and random pairs of them): an ``OnnxModelError`` naming the field
    at fault, or a predictor whose outputs are the graph's; never another exception."""
    rng = random.Random(20250607)
    cases = [{field: value} for field in _FIELDS for value in _VALUES]
    cases += [{a: rng.choice(_VALUES), b: rng.choice(_VALUES)} for a, b in
              (rng.sample(_FIELDS, 2) for _ in range(60))]
    outcomes = {"refused": 0, "ran": 0}
    x = torch.rand(1, 3, 8, 8)
    for index, changes in enumerate(cases):
        path = _save(_identity_model(_metadata(**changes)), tmp_path / f"case{index}.onnx")
        try:
            predictor = OnnxPredictor(path)
        except OnnxModelError as error:
            named = {f.replace("input_spec__", "input_spec.") for f in changes}
            assert any(f"'{f}'" in str(error) or f"'{f.split('.')[0]}'" in str(error) for f in named) or \
                "'class_names'" in str(error) or "'num_classes'" in str(error), (changes, str(error))
            assert len(str(error)) < 1000, changes
            outcomes["refused"] += 1
        else:
            assert torch.equal(predictor(x), 2 * x), changes
            outcomes["ran"] += 1
        path.unlink()
    assert outcomes["refused"] >= 200 and outcomes["ran"] >= 10, outcomes
