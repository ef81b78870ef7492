"""Safe checkpoint reading, container unwrapping, validation before loading, and saving."""

import json
import os
import pickle
import warnings

import pytest
import torch
from torch import nn

import encdec
from encdec.weights import read_metadata, read_state_dict, remap_keys


def small_model():
    return encdec.custom_cnn(num_classes=3)


def randomized(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    return model.eval()


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("container", ["bare", "state_dict", "model", "net", "lightning", "module", "compiled"])
@pytest.mark.parametrize("legacy", [False, True])
def test_containers_and_prefixes_are_unwrapped(tmp_path, container, legacy):
    src = randomized(small_model())
    sd = src.state_dict()
    wrapped = {
        "bare": sd,
        "state_dict": {"state_dict": sd, "epoch": 7, "optimizer": {"lr": 0.1}},
        "model": {"model": sd, "step": 3},
        "net": {"net": sd},
        "lightning": {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "global_step": 10},
        "module": {f"module.{k}": v for k, v in sd.items()},
        "compiled": {f"module._orig_mod.{k}": v for k, v in sd.items()},
    }[container]
    path = tmp_path / "weights.bin"
    torch.save(wrapped, path, _use_new_zipfile_serialization=not legacy)
    dst = small_model()
    report = encdec.load_weights(dst, path)
    assert report.complete and len(report.loaded) == len(sd)
    assert same_weights(src, dst)


def test_ema_weights_on_request(tmp_path):
    plain, ema = randomized(small_model()), small_model()
    path = tmp_path / "ema.ckpt"
    torch.save({"state_dict": plain.state_dict(), "state_dict_ema": ema.state_dict()}, path)
    model = small_model()
    encdec.load_weights(model, path)
    assert same_weights(model, plain)
    encdec.load_weights(model, path, use_ema=True)
    assert same_weights(model, ema)


def test_format_comes_from_bytes_not_extension(tmp_path):
    src = randomized(small_model())
    path = tmp_path / "looks_like_torch.pth"
    encdec.save_weights(src, tmp_path / "x.safetensors")
    os.rename(tmp_path / "x.safetensors", path)
    dst = small_model()
    encdec.load_weights(dst, path)
    assert same_weights(src, dst)
    text = tmp_path / "notes.pth"
    text.write_text("hello, not a checkpoint")
    with pytest.raises(encdec.WeightsError, match="not a checkpoint format"):
        encdec.load_weights(dst, text)


class _Payload:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


@pytest.mark.parametrize("how", ["raw_pickle", "torch_zip", "torch_legacy"])
def test_code_running_pickles_are_refused(tmp_path, how):
    sentinel = tmp_path / "pwned"
    payload = {"state_dict": {"w": [1.0]}, "evil": _Payload(sentinel)}
    path = tmp_path / "evil.pth"
    if how == "raw_pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=how == "torch_zip")
    with pytest.raises(encdec.WeightsError, match="never runs pickled code") as err:
        encdec.load_weights(small_model(), path)
    assert "system" in str(err.value)
    assert not sentinel.exists()


def test_whole_pickled_model_is_refused_with_advice(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(small_model(), path)
    with pytest.raises(encdec.WeightsError, match=r"state_dict\(\)"):
        encdec.load_weights(small_model(), path)


def test_mismatch_lists_keys_with_shapes_and_hint_and_loads_nothing(tmp_path):
    path = tmp_path / "ten.ckpt"
    torch.save(randomized(encdec.custom_cnn(num_classes=10)).state_dict(), path)
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(encdec.WeightsError) as err:
        encdec.load_weights(model, path)
    msg = str(err.value)
    assert "head.2.weight (checkpoint [10, 256] vs model [3, 256])" in msg
    assert "head.2.bias" in msg and "num_classes=10" in msg and str(path) in msg
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_and_unexpected_are_listed_and_capped(tmp_path):
    sd = {f"junk.{i}.weight": torch.zeros(1) for i in range(20)}
    path = tmp_path / "junk.pt"
    torch.save(sd, path)
    with pytest.raises(encdec.WeightsError) as err:
        encdec.load_weights(small_model(), path)
    msg = str(err.value)
    assert "20 unexpected" in msg and "... and 12 more" in msg
    assert "missing from the checkpoint" in msg and "features.0.0.weight" in msg


def test_non_strict_loads_what_fits_and_reports(tmp_path):
    src = randomized(encdec.custom_cnn(num_classes=10))
    path = tmp_path / "ten.ckpt"
    sd = src.state_dict()
    sd["extra.weight"] = torch.zeros(2)
    torch.save(sd, path)
    model = small_model()
    with pytest.warns(UserWarning, match="loaded"):
        report = encdec.load_weights(model, path, strict=False)
    assert {k for k, _, _ in report.mismatched} == {"head.2.weight", "head.2.bias"}
    assert report.unexpected == ["extra.weight"] and not report.complete
    torch.testing.assert_close(model.features[0][0].weight, src.features[0][0].weight)


def test_bad_values_are_refused(tmp_path):
    sd = randomized(small_model()).state_dict()
    for name, bad, match in [
        ("nan", {**sd, "head.0.bias": torch.full((256,), float("nan"))}, "NaN"),
        ("int", {**sd, "head.0.bias": torch.zeros(256, dtype=torch.int64)}, "non-floating"),
        ("str", {"state_dict": {**sd, "note": "hi"}}, "non-tensor"),
        ("list", [1, 2, 3], "not a dict"),
        ("empty", {}, "empty"),
    ]:
        path = tmp_path / f"{name}.pt"
        torch.save(bad, path)
        with pytest.raises(encdec.WeightsError, match=match):
            encdec.load_weights(small_model(), path)


def test_missing_num_batches_tracked_is_tolerated(tmp_path):
    sd = {k: v for k, v in randomized(small_model()).state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pth"
    torch.save(sd, path)
    assert encdec.load_weights(small_model(), path).complete


def test_corrupt_safetensors_header_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(encdec.WeightsError, match="header length"):
        encdec.load_weights(small_model(), path)
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    with pytest.raises(encdec.WeightsError, match="outside"):
        encdec.load_weights(small_model(), path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(encdec.WeightsError, match="no such checkpoint"):
        encdec.load_weights(small_model(), tmp_path / "nope.pth")
    with pytest.raises(encdec.WeightsError, match="from_pretrained"):
        encdec.load_weights(small_model(), tmp_path)


def test_safetensors_round_trip_with_metadata(tmp_path):
    src = randomized(small_model())
    path = tmp_path / "m.safetensors"
    encdec.save_weights(src, path, class_names=["a", "b", "c"], mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])
    meta = read_metadata(path)
    assert meta["architecture"] == "custom_cnn" and json.loads(meta["kwargs"])["num_classes"] == 3
    assert json.loads(meta["class_names"]) == ["a", "b", "c"] and meta["encdec_version"] == encdec.__version__
    dst = encdec.from_pretrained(path)
    assert same_weights(src, dst) and dst.encdec_config["mean"] == [0.5, 0.5, 0.5]
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(src(x), dst.eval()(x))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_pretrained_round_trip(tmp_path):
    src = randomized(encdec.unet(num_classes=4, widths=(4, 8, 16, 32, 64)))
    folder = encdec.save_pretrained(src, tmp_path / "run", class_names=["bg", "a", "b", "c"])
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "unet" and config["kwargs"]["widths"] == [4, 8, 16, 32, 64]
    dst = encdec.from_pretrained(folder).eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(src(x), dst(x), rtol=0, atol=0)
    assert dst.encdec_config["class_names"] == ["bg", "a", "b", "c"]
    with pytest.raises(encdec.WeightsError, match="config.json"):
        encdec.from_pretrained(tmp_path)


def test_builder_weights_argument_and_torch_format_save(tmp_path):
    src = randomized(small_model())
    path = tmp_path / "m.pth"
    encdec.save_weights(src, path)
    assert same_weights(src, encdec.custom_cnn(num_classes=3, weights=path))


def test_from_pretrained_needs_metadata(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in small_model().state_dict().items()}, path)
    with pytest.raises(encdec.WeightsError, match="architecture metadata"):
        encdec.from_pretrained(path)
    assert len(read_state_dict(path)) == len(small_model().state_dict())


def test_remap_keys_first_rule_wins_and_drop():
    sd = {"a.x": torch.zeros(1), "b.x": torch.zeros(1), "skip.me": torch.zeros(1)}
    out = remap_keys(sd, [(r"^a\.", "A."), (r"^(a|b)\.", lambda m: m[1].upper() * 2 + ".")], drop=[r"^skip\."])
    assert list(out) == ["A.x", "BB.x"]


def test_plain_module_loads_without_registry(tmp_path):
    layer = nn.Linear(3, 2)
    path = tmp_path / "lin.pt"
    torch.save({"module.weight": torch.ones(2, 3), "module.bias": torch.zeros(2)}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encdec.load_weights(layer, path)
    assert torch.equal(layer.weight, torch.ones(2, 3))


def test_segmentation_num_classes_and_in_channels_hints(tmp_path):
    widths = (4, 8, 16, 32, 64)
    path = tmp_path / "voc.pth"
    torch.save(encdec.unet(num_classes=22, widths=widths).state_dict(), path)
    with pytest.raises(encdec.WeightsError, match=r"head\.weight \(checkpoint \[22, 4, 1, 1\] vs model \[3, 4, 1, 1\]"
                                                  r"[\s\S]*pass num_classes=22\?"):
        encdec.unet(num_classes=3, widths=widths, weights=path)
    torch.save(encdec.unet(in_channels=1, widths=widths).state_dict(), path)
    with pytest.raises(encdec.WeightsError, match=r"pass in_channels=1\?"):
        encdec.unet(widths=widths, weights=path)


def test_prefix_stripping_takes_linear_time(tmp_path):
    from encdec.weights import load as load_module

    path = tmp_path / "long.pt"
    torch.save({"module." * 500000 + "fc.weight": torch.zeros(1)}, path)
    assert list(read_state_dict(path)) == ["fc.weight"]

    # Guards against quadratic time without a clock: stripping one prefix at a time by slicing copies the rest of
    # the key each time (500000 copies of a 3.5 MB key took ~30 s). Count the copies a key undergoes instead.
    class CountingKey(str):
        slices = 0
        prefix_checks = 0

        def __getitem__(self, index):
            if isinstance(index, slice):
                CountingKey.slices += 1
            return str.__getitem__(self, index)

        def startswith(self, *args):
            CountingKey.prefix_checks += 1
            return str.startswith(self, *args)

    prefixes = 20000
    key = CountingKey("module." * prefixes + "_orig_mod." + "fc.weight")
    assert list(load_module._strip_prefixes({key: torch.zeros(1)})) == ["fc.weight"]
    assert CountingKey.slices <= 1, f"{CountingKey.slices} copies of the key for {prefixes} prefixes"
    assert CountingKey.prefix_checks <= 2 * (prefixes + 3)  # one pass over the prefixes, not one per prefix


def test_load_state_dict_refuses_non_tensors_and_long_names_are_cut():
    layer = nn.Linear(2, 3)
    with pytest.raises(encdec.WeightsError, match="entry 'bias' is a list, not a tensor"):
        encdec.load_state_dict(layer, {"weight": torch.zeros(3, 2), "bias": [0.0, 0.0, 0.0]})
    with pytest.raises(encdec.WeightsError, match="not a mapping"):
        encdec.load_state_dict(layer, [torch.zeros(3, 2)])
    with pytest.raises(encdec.WeightsError) as err:
        encdec.load_state_dict(layer, {"weight": torch.zeros(3, 2), "bias": torch.zeros(3), "x" * 10**6: torch.ones(1)})
    assert len(str(err.value)) < 1000 and "(1000000 characters)" in str(err.value)


def test_from_pretrained_refuses_configs_before_building(tmp_path):
    path = tmp_path / "m.safetensors"
    encdec.save_weights(small_model(), path)
    with pytest.raises(encdec.WeightsError, match="refused before building the model"):
        encdec.from_pretrained(path, num_classes=10**9)
    with pytest.raises(encdec.WeightsError, match="cannot be built: TypeError"):
        encdec.from_pretrained(path, colour="red")
