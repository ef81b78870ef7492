"""The fast inference path and the memory layout chosen by measurement (encdec.layout, predict, fit)."""

from __future__ import annotations

import time
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import encdec
from encdec import layout
from encdec.datasets import SyntheticShapes
from encdec.inference import predict

WIDTHS = (8, 16, 32, 64, 128)


@pytest.fixture(autouse=True)
def _fresh_layout_choices(tmp_path, monkeypatch):
    """Each test starts with no remembered layout, in memory or on disk."""
    monkeypatch.setenv("ENCDEC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(layout, "_CHOSEN", {})


def _tiny_unet(num_classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    model = encdec.unet(num_classes=num_classes, widths=WIDTHS)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():  # running statistics that make the folding matter
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def _first_conv_weight(model: nn.Module) -> torch.Tensor:
    return next(m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))


def _eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).softmax(1)


def _labels_agree(labels: torch.Tensor, probabilities: torch.Tensor) -> None:
    """Labels equal the fp32 argmax wherever the top two classes are not within float rounding of each other."""
    top2 = probabilities.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4
    assert clear.float().mean() > 0.95
    assert torch.equal(labels[clear], probabilities.argmax(1)[clear])


@pytest.mark.parametrize("channels_last", ["auto", True, False])
def test_default_predict_equals_the_model_in_fp32(channels_last):
    model = _tiny_unet()
    x = torch.randn(6, 3, 32, 48)
    probabilities = _eager(model, x)
    out = predict(model, x, precision="fp32", batch_size=1, channels_last=channels_last, probabilities=True)
    assert torch.allclose(out, probabilities, atol=1e-5)
    _labels_agree(predict(model, x, precision="fp32", batch_size=1, channels_last=channels_last), probabilities)


def test_predict_leaves_the_model_as_it_was_and_follows_new_weights():
    model = _tiny_unet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    predict(model, x, precision="fp32", channels_last=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]) and value.is_contiguous(), key
    assert _first_conv_weight(model).is_contiguous()

    # an optimizer step, load_state_dict and an in-place edit each change what predict returns
    optimizer = torch.optim.SGD(model.parameters(), lr=10.0)
    model.train()
    model(x).mean().backward()
    optimizer.step()
    model.eval()
    assert torch.allclose(predict(model, x, precision="fp32", probabilities=True), _eager(model, x), atol=1e-5)
    other = _tiny_unet()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.5)
    model.load_state_dict(other.state_dict())
    assert torch.allclose(predict(model, x, precision="fp32", probabilities=True), _eager(other, x), atol=1e-5)
    with torch.no_grad():
        model.head.weight.zero_() if hasattr(model, "head") else next(iter(model.parameters())).zero_()
    assert torch.allclose(predict(model, x, precision="fp32", probabilities=True), _eager(model, x), atol=1e-5)


def test_predict_reuses_its_folded_copy_while_the_weights_stay():
    from encdec.inference import _FAST_MODELS

    model = _tiny_unet()
    x = torch.randn(1, 3, 32, 32)
    predict(model, x, precision="fp32")
    first = _FAST_MODELS[model].module
    predict(model, x, precision="fp32")
    assert _FAST_MODELS[model].module is first
    assert not any(isinstance(m, nn.BatchNorm2d) for m in first.modules())
    with torch.no_grad():
        next(iter(model.parameters())).add_(1.0)
    predict(model, x, precision="fp32")
    assert _FAST_MODELS[model].module is not first


def test_predict_without_optimize_runs_the_model_itself():
    model = _tiny_unet()
    calls = []
    model.register_forward_hook(lambda module, *args: calls.append(module))
    predict(model, torch.randn(1, 3, 32, 32), optimize=False)
    assert calls == [model]
    predict(model, torch.randn(1, 3, 32, 32))
    assert len(calls) == 2 and calls[1] is not model  # the folded copy ran
    assert not any(isinstance(m, nn.BatchNorm2d) for m in calls[1].modules())


class _Sleeper(nn.Module):
    """A conv net whose forward is slow in one memory layout."""

    def __init__(self, slow_layout: torch.memory_format) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.slow_layout = slow_layout

    def forward(self, x):
        if x.is_contiguous(memory_format=self.slow_layout) and not x.is_contiguous(
                memory_format=torch.contiguous_format if self.slow_layout == torch.channels_last
                else torch.channels_last):
            time.sleep(0.05)
        return self.conv(x)


@pytest.mark.parametrize("slow, expected", [(torch.channels_last, False), (torch.contiguous_format, True)])
def test_measurement_picks_the_faster_layout(slow, expected):
    model = _Sleeper(slow)
    shape = (1, 3, 8, 8)
    state = torch.get_rng_state()
    weight = model.conv.weight.detach().clone()
    chosen = layout.measure_channels_last(model, shape, torch.device("cpu"), "fp32", train=True)
    assert chosen is expected
    assert torch.equal(torch.get_rng_state(), state)  # the random batch came from a forked generator
    assert torch.equal(model.conv.weight, weight) and model.conv.weight.grad is None


@pytest.mark.parametrize("slow, expected", [(torch.channels_last, False), (torch.contiguous_format, True)])
def test_predict_times_its_first_batches_and_keeps_every_output(slow, expected):
    model = _Sleeper(slow).eval()
    x = torch.randn(6, 3, 8, 16)
    seen = []
    model.conv.register_forward_hook(lambda m, i, o: seen.append(i[0].is_contiguous(memory_format=torch.channels_last)))
    labels = predict(model, x, batch_size=1, precision="fp32", optimize=False)
    assert seen[:4] == [False, True, False, True]  # two warm-ups, two timed batches
    assert seen[4:] == [expected, expected]
    with torch.no_grad():
        assert torch.equal(labels, model.conv(x).argmax(1))
    seen.clear()
    predict(model, x[:1], precision="fp32", optimize=False)  # the choice is remembered for the shape
    assert seen == [expected]


def test_a_measured_choice_is_kept_for_later_processes(tmp_path, monkeypatch):
    calls = []

    def fake_measure(model, shape, device, precision, *, train, repeats=2):
        calls.append(tuple(shape))
        return True

    monkeypatch.setattr(layout, "measure_channels_last", fake_measure)
    conv, cpu = nn.Conv2d(3, 4, 3), torch.device("cpu")
    assert layout.choose_channels_last("auto", conv, cpu, "fp32", (2, 3, 16, 16), train=True) is True
    assert layout.cache_file() == tmp_path / "cache" / "layout-choices.json" and layout.cache_file().is_file()
    monkeypatch.setattr(layout, "_CHOSEN", {})  # a new process: only the file remembers
    assert layout.choose_channels_last("auto", nn.Conv2d(3, 4, 3), cpu, "fp32", (2, 3, 16, 16), train=True) is True
    assert calls == [(2, 3, 16, 16)]
    layout.choose_channels_last("auto", conv, cpu, "fp32", (2, 3, 32, 32), train=True)  # another shape: measured
    layout.choose_channels_last("auto", nn.Conv2d(3, 5, 3), cpu, "fp32", (2, 3, 16, 16), train=True)  # other model
    assert calls == [(2, 3, 16, 16), (2, 3, 32, 32), (2, 3, 16, 16)]

    layout.cache_file().write_text("{not json")  # a damaged file is measured over, not trusted
    monkeypatch.setattr(layout, "_CHOSEN", {})
    layout.choose_channels_last("auto", conv, cpu, "fp32", (2, 3, 16, 16), train=True)
    assert len(calls) == 4


def test_explicit_layouts_and_known_cases_are_not_measured():
    conv, linear, cpu = nn.Conv2d(3, 4, 3), nn.Linear(3, 4), torch.device("cpu")
    assert layout.known_channels_last(True, linear, cpu, "fp32") is True
    assert layout.known_channels_last("auto", linear, cpu, "fp32") is False
    assert layout.known_channels_last("auto", conv, cpu, "bf16") is True
    assert layout.known_channels_last("auto", conv, torch.device("cuda"), "fp32") is True
    assert layout.known_channels_last("auto", conv, cpu, "fp32") is None
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto', got 'yes'"):
        layout.choose_channels_last("yes", conv, cpu, "fp32")
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto'"):
        predict(conv, torch.randn(1, 3, 8, 8), channels_last="yes")


def _loader(n: int = 8, size: int = 32) -> DataLoader:
    return DataLoader(SyntheticShapes(n=n, size=size, num_classes=3, seed=0), batch_size=4, shuffle=True)


def test_fit_records_its_layout_and_a_resumed_run_keeps_it(tmp_path, monkeypatch):
    measured = []

    def fake_measure(model, shape, device, precision, *, train, repeats=2):
        measured.append((tuple(shape), train))
        return True

    monkeypatch.setattr(layout, "measure_channels_last", fake_measure)
    monkeypatch.setattr(layout, "_CHOSEN", {})
    model = encdec.unet(num_classes=3, widths=WIDTHS)
    encdec.fit(model, _loader(), epochs=1, checkpoint_dir=tmp_path, progress=False, precision="fp32", seed=0)
    assert measured == [((4, 3, 32, 32), True)]  # the training data's batch shape, training steps
    weight = _first_conv_weight(model)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=False)
    assert checkpoint["settings"]["channels_last"] is True

    # a resumed run uses the recorded layout even where a new measurement would say otherwise
    monkeypatch.setattr(layout, "_CHOSEN", {})
    monkeypatch.setattr(layout, "measure_channels_last", lambda *a, **k: pytest.fail("resume measured again"))
    resumed = encdec.unet(num_classes=3, widths=WIDTHS)
    encdec.fit(resumed, _loader(), epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False,
               precision="fp32", seed=0)
    weight = _first_conv_weight(resumed)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


@pytest.mark.slow
def test_resumed_auto_run_equals_the_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    whole = encdec.unet(num_classes=3, widths=WIDTHS)
    start = {k: v.clone() for k, v in whole.state_dict().items()}
    encdec.fit(whole, _loader(), epochs=2, progress=False, precision="fp32", seed=0)
    parted = encdec.unet(num_classes=3, widths=WIDTHS)
    parted.load_state_dict(start)
    encdec.fit(parted, _loader(), epochs=1, checkpoint_dir=tmp_path, progress=False, precision="fp32", seed=0)
    encdec.fit(parted, _loader(), epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False,
               precision="fp32", seed=0)
    for key, value in whole.state_dict().items():
        assert torch.equal(value, parted.state_dict()[key]), key


def test_compile_without_a_cpp_compiler_warns_and_runs_uncompiled(monkeypatch):
    import torch._inductor.cpp_builder as cpp_builder

    def no_compiler():
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    model = _tiny_unet()
    x = torch.randn(2, 3, 32, 32)
    with pytest.warns(RuntimeWarning, match="needs a C\\+\\+ compiler"):
        out = predict(model, x, precision="fp32", compile=True, probabilities=True)
    assert torch.allclose(out, _eager(model, x), atol=1e-5)
    with pytest.warns(RuntimeWarning, match="needs a C\\+\\+ compiler"):
        encdec.fit(encdec.unet(num_classes=3, widths=WIDTHS), _loader(4), epochs=1, progress=False,
                   precision="fp32", compile=True)


def _small_segmenter() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1))


@pytest.mark.slow
def test_compiled_predict_and_fit_match_eager():
    model = _small_segmenter().eval()
    _randomise = torch.Generator().manual_seed(1)
    model[1].running_var.copy_(torch.rand(8, generator=_randomise) + 0.5)
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager would pass silently otherwise
        out = predict(model, x, precision="fp32", compile=True, probabilities=True)
        assert torch.allclose(out, _eager(model, x), atol=1e-5)
        compiled, eager = _small_segmenter(), _small_segmenter()
        h1 = encdec.fit(compiled, _loader(4), epochs=1, progress=False, precision="fp32", seed=0, compile=True,
                        channels_last=False, optimizer=torch.optim.SGD(compiled.parameters(), lr=0.1))
        h2 = encdec.fit(eager, _loader(4), epochs=1, progress=False, precision="fp32", seed=0, channels_last=False,
                        optimizer=torch.optim.SGD(eager.parameters(), lr=0.1))
    assert h1["train_loss"][0] == pytest.approx(h2["train_loss"][0], rel=1e-4)
    for a, b in zip(compiled.parameters(), eager.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
