"""The fast inference path and the memory layout: the fixed rule of ``"auto"`` and the explicit ``"measure"``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import encdec
from encdec import layout, runtime
from encdec.datasets import SyntheticShapes
from encdec.inference import predict

WIDTHS = (8, 16, 32, 64, 128)


@pytest.fixture(autouse=True)
def _fresh_layout_choices(monkeypatch):
    """Each test starts with no measured layout."""
    monkeypatch.setattr(layout, "_CHOSEN", {})


@pytest.fixture
def no_measuring(monkeypatch):
    """Fail the test if anything times the layouts."""
    def fail(*args, **kwargs):
        pytest.fail("a layout was measured")

    monkeypatch.setattr(layout, "measure_channels_last", fail)
    monkeypatch.setattr(layout, "_faster", fail)


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


@pytest.mark.parametrize("channels_last", ["auto", "measure", True, False])
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
def test_predict_measure_times_its_first_batches_and_keeps_every_output(slow, expected):
    model = _Sleeper(slow).eval()
    x = torch.randn(6, 3, 8, 16)
    seen = []
    model.conv.register_forward_hook(lambda m, i, o: seen.append(i[0].is_contiguous(memory_format=torch.channels_last)))
    labels = predict(model, x, batch_size=1, precision="fp32", optimize=False, channels_last="measure")
    assert seen[:4] == [False, True, False, True]  # two warm-ups, two timed batches
    assert seen[4:] == [expected, expected]
    with torch.no_grad():
        assert torch.equal(labels, model.conv(x).argmax(1))
    seen.clear()
    predict(model, x[:1], precision="fp32", optimize=False, channels_last="measure")  # remembered for the shape
    assert seen == [expected]
    seen.clear()
    predict(model, x, batch_size=1, precision="fp32", optimize=False)  # "auto" follows the rule: 8x16 is NCHW
    assert seen == [False] * 6


def test_a_measured_choice_is_kept_for_the_process_only(tmp_path, monkeypatch):
    calls = []

    def fake_measure(model, shape, device, precision, *, train, repeats=2):
        calls.append(tuple(shape))
        return True

    monkeypatch.setattr(layout, "measure_channels_last", fake_measure)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    conv, cpu = nn.Conv2d(3, 4, 3), torch.device("cpu")
    assert layout.choose_channels_last("measure", conv, cpu, "fp32", (2, 3, 16, 16), train=True) is True
    assert layout.choose_channels_last("measure", nn.Conv2d(3, 4, 3), cpu, "fp32", (2, 3, 16, 16), train=True)
    assert calls == [(2, 3, 16, 16)]
    layout.choose_channels_last("measure", conv, cpu, "fp32", (2, 3, 32, 32), train=True)  # another shape
    layout.choose_channels_last("measure", nn.Conv2d(3, 5, 3), cpu, "fp32", (2, 3, 16, 16), train=True)  # model
    assert calls == [(2, 3, 16, 16), (2, 3, 32, 32), (2, 3, 16, 16)]
    assert list(tmp_path.rglob("*")) == []  # nothing written for later processes

    # "auto" never consults a measurement, not even one made in this process
    assert layout.choose_channels_last("auto", conv, cpu, "fp32", (2, 3, 16, 16), train=True) is False
    monkeypatch.setattr(layout, "_CHOSEN", {})  # a new process: measured again
    layout.choose_channels_last("measure", conv, cpu, "fp32", (2, 3, 16, 16), train=True)
    assert len(calls) == 4
    # nothing to time: no input shape, or no 2-D convolutions
    assert layout.choose_channels_last("measure", conv, cpu, "fp32", None, train=False) is True
    assert layout.choose_channels_last("measure", nn.Linear(3, 4), cpu, "fp32", (2, 3, 16, 16)) is False
    assert len(calls) == 4


CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
CONV = nn.Conv2d(3, 4, 3)
SMALL, MEDIUM, LARGE = (8, 3, 64, 64), (8, 3, 128, 128), (8, 3, 256, 256)


@pytest.mark.parametrize("device, precision, train, shape, cpu, expected", [
    # CUDA: channels-last for conv nets (cuDNN's mixed-precision kernels are NHWC), whatever the rest
    (CUDA, "bf16", True, SMALL, "avx2", True),
    (CUDA, "fp16", False, LARGE, "other", True),
    (CUDA, "fp32", True, None, "native-bf16", True),
    # CPU, bf16: channels-last (oneDNN's bf16 convolutions), training or not, any size
    (CPU, "bf16", True, SMALL, "native-bf16", True),
    (CPU, "bf16", False, SMALL, "avx2", True),
    (CPU, "bf16", True, None, "avx512", True),
    # CPU, fp32 training: NCHW on AVX2 (faster at 64 and 256 px) and unknown CPUs; channels-last on AVX-512 from
    # 256x256 up
    (CPU, "fp32", True, SMALL, "avx2", False),
    (CPU, "fp32", True, LARGE, "avx2", False),
    (CPU, "fp32", True, (2, 3, 512, 512), "avx2", False),
    (CPU, "fp32", True, LARGE, "other", False),
    (CPU, "fp32", True, SMALL, "avx512", False),
    (CPU, "fp32", True, MEDIUM, "avx512", False),
    (CPU, "fp32", True, LARGE, "avx512", True),
    (CPU, "fp32", True, (2, 3, 128, 512), "avx512", True),
    (CPU, "fp32", True, LARGE, "native-bf16", True),
    (CPU, "fp32", True, SMALL, "native-bf16", False),
    (CPU, "fp32", True, None, "native-bf16", False),
    # CPU, fp32 inference: channels-last from 128x128 pixels (or an unknown size) up, on every CPU class
    (CPU, "fp32", False, SMALL, "avx2", False),
    (CPU, "fp32", False, (8, 3, 96, 160), "avx512", False),
    (CPU, "fp32", False, MEDIUM, "avx2", True),
    (CPU, "fp32", False, (1, 3, 64, 256), "other", True),
    (CPU, "fp32", False, LARGE, "native-bf16", True),
    (CPU, "fp32", False, None, "avx2", True),
    # MPS: NCHW
    (MPS, "fp32", False, LARGE, "avx2", False),
    (MPS, "fp32", True, LARGE, "avx512", False),
])
def test_the_layout_rule_case_by_case(device, precision, train, shape, cpu, expected):
    assert runtime.channels_last_rule(CONV, device, precision, train=train, shape=shape, cpu=cpu) is expected


@pytest.mark.parametrize("device", [CPU, CUDA, MPS])
@pytest.mark.parametrize("train", [True, False])
def test_models_without_convolutions_are_always_nchw(device, train):
    for cpu in runtime.CPU_CLASSES:
        for precision in ("fp32", "bf16"):
            assert not runtime.channels_last_rule(nn.Linear(3, 4), device, precision, train=train, shape=LARGE,
                                                  cpu=cpu)


@pytest.mark.parametrize("bf16, capability, expected", [
    (True, "AVX512", "native-bf16"), (True, "AVX2", "native-bf16"), (False, "AVX512", "avx512"),
    (False, "AVX2", "avx2"), (False, "DEFAULT", "other"), (False, "SVE256", "other"), (False, "ZVECTOR", "other"),
])
def test_the_cpu_class_comes_from_torch(monkeypatch, bf16, capability, expected):
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: bf16)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert runtime.cpu_class() == expected
    # the rule reads this machine's class when none is given
    assert runtime.channels_last_rule(CONV, CPU, "fp32", train=True, shape=LARGE) is (expected != "avx2"
                                                                                      and expected != "other")


def test_explicit_layouts_and_the_rule_are_not_measured(no_measuring):
    conv, linear, cpu = nn.Conv2d(3, 4, 3), nn.Linear(3, 4), torch.device("cpu")
    assert layout.choose_channels_last(True, linear, cpu, "fp32", SMALL) is True
    assert layout.choose_channels_last(False, conv, cpu, "bf16", LARGE) is False
    assert layout.choose_channels_last("auto", linear, cpu, "fp32", LARGE) is False
    assert layout.choose_channels_last("auto", conv, cpu, "bf16", SMALL) is True
    assert layout.choose_channels_last("auto", conv, torch.device("cuda"), "fp32") is True
    assert layout.choose_channels_last("auto", conv, cpu, "fp32", SMALL, train=False) is False
    assert layout.choose_channels_last("auto", conv, cpu, "fp32", LARGE, train=False) is True
    assert runtime.resolve_channels_last("auto", conv, cpu, "fp32", train=False, shape=LARGE) is True
    with pytest.raises(ValueError, match="channels_last must be True, False, 'auto' or 'measure', got 'yes'"):
        layout.choose_channels_last("yes", conv, cpu, "fp32")
    with pytest.raises(ValueError, match="channels_last must be True, False, 'auto' or 'measure'"):
        predict(conv, torch.randn(1, 3, 8, 8), channels_last="yes")
    with pytest.raises(ValueError, match="channels_last must be True, False, 'auto' or 'measure'"):
        encdec.fit(conv, _loader(), epochs=1, channels_last=1, progress=False)
    with pytest.raises(ValueError, match="resolve it with encdec.layout.choose_channels_last"):
        runtime.resolve_channels_last("measure", conv, cpu, "fp32")


def test_auto_follows_the_rule_in_fit_predict_evaluate_and_optimize(no_measuring, monkeypatch):
    model = _tiny_unet()
    seen = []
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first.register_forward_pre_hook(lambda m, args: seen.append(
        args[0].is_contiguous(memory_format=torch.channels_last) and not args[0].is_contiguous()))
    predict(model, torch.randn(2, 3, 32, 32), precision="fp32", optimize=False)
    predict(model, torch.randn(1, 3, 128, 128), precision="fp32", optimize=False)
    encdec.evaluate(model, _loader(4, size=32), device="cpu")
    encdec.evaluate(model, _loader(4, size=128), device="cpu")
    assert seen == [False, True, False, True]
    assert _first_conv_weight(encdec.optimize_for_inference(model)).is_contiguous(memory_format=torch.channels_last)

    # fit: the rule for training steps, by the CPU's class
    for cpu, expected in (("avx2", False), ("avx512", True)):
        monkeypatch.setattr(runtime, "cpu_class", lambda cpu=cpu: cpu)
        trained = encdec.unet(num_classes=3, widths=WIDTHS)
        encdec.fit(trained, _loader(4, size=256), epochs=1, progress=False, precision="fp32", device="cpu",
                   seed=0)
        weight = _first_conv_weight(trained)
        assert weight.is_contiguous(memory_format=torch.channels_last) is expected, cpu
        assert weight.is_contiguous() is not expected, cpu


def _loader(n: int = 8, size: int = 32) -> DataLoader:
    return DataLoader(SyntheticShapes(n=n, size=size, num_classes=3, seed=0), batch_size=4, shuffle=True)


def test_fit_records_its_measured_layout_and_a_resumed_run_keeps_it(tmp_path, monkeypatch):
    measured = []

    def fake_measure(model, shape, device, precision, *, train, repeats=2):
        measured.append((tuple(shape), train))
        return True

    monkeypatch.setattr(layout, "measure_channels_last", fake_measure)
    monkeypatch.setattr(layout, "_CHOSEN", {})
    model = encdec.unet(num_classes=3, widths=WIDTHS)
    encdec.fit(model, _loader(), epochs=1, checkpoint_dir=tmp_path, progress=False, precision="fp32", seed=0,
               channels_last="measure")
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
               precision="fp32", seed=0, channels_last="measure")
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


_SEEDED_FIT = textwrap.dedent("""
    import hashlib
    import os
    import random
    import sys
    import time

    if sys.argv[1:] == ["--busy"]:  # a machine so busy that every timing is noise
        noise = random.Random(os.getpid())
        clock = [0.0]

        def noisy_counter():
            clock[0] += noise.random()
            return clock[0]

        time.perf_counter = noisy_counter

    import torch
    from torch.utils.data import DataLoader

    import encdec
    from encdec.datasets import SyntheticShapes

    torch.manual_seed(0)
    model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
    loader = DataLoader(SyntheticShapes(n=8, size=64, num_classes=3, seed=0), batch_size=4, shuffle=True)
    encdec.fit(model, loader, epochs=1, device="cpu", precision="fp32", seed=0, progress=False)
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().contiguous().numpy().tobytes())
    print(digest.hexdigest())
""")


def _run_seeded_fit(script: Path, cache: Path, home: Path, *args: str) -> str:
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(cache.parent), ENCDEC_CACHE_DIR=str(cache),
               PYTHONPATH=os.pathsep.join([str(Path(encdec.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_seeded_fit_gives_the_same_weights_whatever_the_cache_folder(tmp_path):
    """Runs of one seeded script in separate processes: bit-identical weights whether the cache folder exists
    (holding a layout file of an earlier encdec), is removed between the runs, or cannot be written, and when
    every timing is noise."""
    script = tmp_path / "train.py"
    script.write_text(_SEEDED_FIT)
    home, cache = tmp_path / "home", tmp_path / "xdg" / "encdec"
    home.mkdir()
    cache.mkdir(parents=True)
    stale = cache / "layout-choices.json"
    stale.write_text('{"any machine": {"UNet|4x3x64x64|cpu|fp32|train|1 threads": true}}')
    digests = [_run_seeded_fit(script, cache, home)]
    assert sorted(p.name for p in cache.iterdir()) == ["layout-choices.json"] and stale.read_text().startswith("{")

    for child in cache.iterdir():  # removed between the runs
        child.unlink()
    cache.rmdir()
    digests.append(_run_seeded_fit(script, cache, home))
    assert not cache.exists()

    blocker = tmp_path / "a file"  # not writable: the cache folder would have to live under a regular file
    blocker.write_text("")
    digests.append(_run_seeded_fit(script, blocker / "encdec", home))
    digests.append(_run_seeded_fit(script, tmp_path / "fresh" / "encdec", home, "--busy"))  # nothing stored
    assert len(set(digests)) == 1, digests
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("slow, expected", [(torch.channels_last, False), (torch.contiguous_format, True)])
def test_tune_measures_and_returns_the_choice_to_pass_on(slow, expected):
    model = _Sleeper(slow)
    batch = torch.randn(2, 3, 8, 8)
    state = torch.get_rng_state()
    assert encdec.tune(model, batch, train=False, device="cpu", precision="fp32") is expected
    assert encdec.tune(model, (2, 3, 8, 8), train=True, device="cpu", precision="fp32", repeats=1) is expected
    assert torch.equal(torch.get_rng_state(), state)
    assert model.conv.weight.grad is None and model.training
    with torch.no_grad():  # the answer is an ordinary channels_last= value
        x = torch.randn(2, 3, 8, 8)
        assert torch.equal(predict(model, x, precision="fp32", channels_last=expected, optimize=False),
                           model.conv(x).argmax(1))


def test_tune_reads_the_batch_shape_of_a_loader_and_pads_to_the_size_rule(monkeypatch):
    shapes = []
    monkeypatch.setattr(encdec.training.tuning, "measure_channels_last",
                        lambda model, shape, device, precision, *, train, repeats: shapes.append((shape, train)))
    model = encdec.unet(num_classes=3, widths=WIDTHS)
    encdec.tune(model, _loader(8, size=32), train=True, device="cpu")
    encdec.tune(model, torch.randn(1, 3, 30, 45), train=False, device="cpu")
    assert shapes == [((4, 3, 32, 32), True), ((1, 3, 32, 48), False)]
    assert encdec.tune(nn.Linear(3, 4), (1, 3, 8, 8), train=False, device="cpu") is False  # nothing to time
    assert len(shapes) == 2
    with pytest.raises(ValueError, match="tune: data must be a DataLoader .* got Tensor of shape \\(3, 8, 8\\)"):
        encdec.tune(model, torch.randn(3, 8, 8), train=False)
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        encdec.tune(model, (1, 3, 8, 8), train=False, repeats=0)


def test_evaluate_measures_only_when_asked(monkeypatch):
    measured = []

    def fake_measure(model, shape, device, precision, *, train, repeats=2):
        measured.append((tuple(shape), train))
        return False

    monkeypatch.setattr(layout, "measure_channels_last", fake_measure)
    model = _tiny_unet()
    encdec.evaluate(model, _loader(8, size=64), device="cpu")
    assert measured == []
    encdec.evaluate(model, _loader(8, size=64), device="cpu", channels_last="measure")
    assert measured == [((4, 3, 64, 64), False)]
