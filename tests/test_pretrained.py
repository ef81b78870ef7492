"""``encdec.pretrained``: folders and self-describing files, loading whatever a user holds, verified conversion."""

from __future__ import annotations

import pytest
import torch

import encdec
from encdec.pretrained import convert_checkpoint, load_model, saved_architecture
from encdec.weights import WeightsError, read_metadata


@pytest.fixture
def reference_cnn(tmp_path):
    torch.manual_seed(0)
    model = encdec.custom_cnn(num_classes=5).eval()
    state = {k.replace("features.", "block").replace("head.0", "fc1").replace("head.2", "fc2"): v
             for k, v in model.state_dict().items()}
    state = {(k[:5] + str(int(k[5]) + 1) + k[6:]) if k.startswith("block") else k: v for k, v in state.items()}
    path = tmp_path / "custom_cnn.pth"
    torch.save(state, path)  # the reference layout: block1..5, fc1, fc2
    return model, path


def test_load_model_converts_a_reference_checkpoint_and_records_its_normalisation(reference_cnn, tmp_path):
    model, path = reference_cnn
    lines = []
    loaded = load_model(path, "custom_cnn", num_classes=5, log=lines.append)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))
    assert lines and lines[0].startswith(f"loaded {len(model.state_dict())} tensors from")
    vgg = tmp_path / "vgg.pth"
    torch.save(encdec.vgg16_cifar().state_dict(), vgg)
    assert load_model(vgg, "vgg16_cifar").encdec_config["mean"] == [0.4914, 0.4822, 0.4465]


def test_load_model_reads_self_describing_files_and_refuses_the_wrong_name(reference_cnn, tmp_path):
    model, path = reference_cnn
    with pytest.raises(ValueError, match="does not name its architecture.*pass the model name"):
        load_model(path)
    folder = encdec.save_pretrained(model, tmp_path / "run", class_names=list("abcde"))
    assert saved_architecture(folder) == "custom_cnn" and saved_architecture(path) is None
    again = load_model(folder)
    assert again.encdec_config["class_names"] == list("abcde")
    with pytest.raises(WeightsError, match="holds a custom_cnn, not a unet"):
        load_model(folder, "unet")


def test_convert_checkpoint_writes_a_verified_self_describing_file(reference_cnn, tmp_path):
    model, path = reference_cnn
    out = convert_checkpoint(path, tmp_path / "cnn.safetensors", "custom_cnn", num_classes=5,
                             class_names=list("abcde"))
    meta = read_metadata(out)
    assert meta["architecture"] == "custom_cnn" and meta["source"] == "custom_cnn.pth"
    rebuilt = encdec.from_pretrained(out)
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())
    folder = convert_checkpoint(path, tmp_path / "pets", "custom_cnn", num_classes=5)
    assert folder.name == "model.safetensors" and (folder.parent / "config.json").is_file()


def test_convert_checkpoint_refuses_bad_requests_before_writing(reference_cnn, tmp_path):
    _, path = reference_cnn
    with pytest.raises(ValueError, match="same file"):
        convert_checkpoint(path, path, "custom_cnn", num_classes=5)
    with pytest.raises(ValueError, match=r"\.safetensors file, or a folder"):
        convert_checkpoint(path, tmp_path / "x.onnx", "custom_cnn", num_classes=5)
    with pytest.raises(ValueError, match="lists 2 names for a model with 5 outputs"):
        convert_checkpoint(path, tmp_path / "x.safetensors", "custom_cnn", num_classes=5, class_names=["a", "b"])
    with pytest.raises(WeightsError, match="num_classes=5"):
        convert_checkpoint(path, tmp_path / "x.safetensors", "custom_cnn")
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "x.onnx").exists()


def test_a_failed_verification_leaves_the_earlier_file(tmp_path):
    target = tmp_path / "m.safetensors"
    encdec.save_weights(encdec.custom_cnn(num_classes=2), target)
    before = target.read_bytes()

    def refuse(path):
        raise WeightsError("verification failed: on purpose")

    with pytest.raises(WeightsError, match="on purpose"):
        encdec.save_weights(encdec.custom_cnn(num_classes=3), target, verify=refuse)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary folder left


def test_save_pretrained_into_a_file_is_refused_and_a_failure_leaves_no_empty_folder(tmp_path):
    existing = tmp_path / "taken"
    existing.write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        encdec.save_pretrained(encdec.custom_cnn(), existing)

    def refuse(path):
        raise WeightsError("no")

    with pytest.raises(WeightsError):
        encdec.save_pretrained(encdec.custom_cnn(), tmp_path / "new", verify=refuse)
    assert not (tmp_path / "new").exists()


def test_recorded_configuration_leaves_out_arguments_the_model_does_not_use(tmp_path):
    import json

    plain = encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64))
    assert "decoder_channels" not in plain.encdec_config["kwargs"]
    assert plain.encdec_config["kwargs"]["widths"] == [4, 8, 16, 32, 64]
    with_encoder = encdec.unet(num_classes=3, encoder="resnet18", decoder_channels=(32, 16, 8, 8, 4))
    assert "widths" not in with_encoder.encdec_config["kwargs"]
    folder = encdec.save_pretrained(with_encoder, tmp_path / "run")
    config = json.loads((folder / "config.json").read_text())
    assert config["kwargs"]["decoder_channels"] == [32, 16, 8, 8, 4] and "widths" not in config["kwargs"]
    rebuilt = encdec.from_pretrained(folder)
    assert not hasattr(rebuilt, "unused_arguments")
    x = torch.randn(1, 3, 64, 64)
    with_encoder.eval(), rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(with_encoder(x), rebuilt(x))


def test_a_reference_checkpoint_gets_the_class_names_of_its_data_set(tmp_path):
    path = tmp_path / "UNet_best_model.pth"
    torch.save(encdec.unet(widths=(4, 8, 16, 32, 64)).state_dict(), path)
    model = encdec.load_model(path, "unet", widths=(4, 8, 16, 32, 64))
    names = model.encdec_config["class_names"]
    assert len(names) == 22 and names[9] == "chair" and names[21] == "boundary"  # VOC's classes, then the boundary
    path = tmp_path / "vgg16_epoch250.ckpt"
    torch.save(encdec.vgg16_cifar().state_dict(), path)
    assert encdec.load_model(path, "vgg16_cifar").encdec_config["class_names"][0] == "airplane"
    path = tmp_path / "other.pth"
    torch.save(encdec.unet(encoder="resnet18", num_classes=22).state_dict(), path)
    assert "class_names" not in encdec.load_model(path, "unet", encoder="resnet18", num_classes=22).encdec_config


def test_from_pretrained_takes_a_folder_holding_one_self_describing_weights_file(tmp_path):
    folder = tmp_path / "demo-output"
    folder.mkdir()
    (folder / "history.json").write_text("{}")
    torch.save({"x": torch.zeros(1)}, folder / "plain.pth")
    encdec.save_weights(encdec.custom_cnn(num_classes=3), folder / "unet_shapes.safetensors",
                        class_names=["a", "b", "c"])
    model = encdec.from_pretrained(folder)  # as `encdec demo` writes it: no config.json
    assert model.num_classes == 3 and model.encdec_config["class_names"] == ["a", "b", "c"]
    encdec.save_weights(encdec.custom_cnn(num_classes=2), folder / "second.safetensors")
    with pytest.raises(encdec.WeightsError, match="or one encdec .safetensors file"):
        encdec.from_pretrained(folder)  # two candidates: which one is not guessed
