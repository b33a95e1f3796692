"""Analog layers of BERT-family models: which layers, digital limits, training modes, programming, calibration."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (AlbertConfig, AutoModelForSequenceClassification, BertConfig, DistilBertConfig,
                          GPT2Config)

from aimc_runner import analog
from aimc_runner.analog import AnalogLinear, analog_layers, calibrate, convert, program, set_input_ranges, set_mode
from aimc_runner.circuit import pwm
from aimc_runner.config import (AdcConfig, AdcKind, CircuitConfig, DeviceConfig, InputRange, PwmConfig, TileConfig,
                                TrainMode, WeightScaling)
from aimc_runner.tile import AnalogTileArray, transfer_matrix

SMALL = dict(hidden_size=16, num_attention_heads=2, intermediate_size=40, vocab_size=60, max_position_embeddings=24,
             num_labels=3)
BERT_LAYER = ["attention.output.dense", "attention.self.key", "attention.self.query", "attention.self.value",
              "intermediate.dense", "output.dense"]


def model_of(kind: str, layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "bert":
        cfg = BertConfig(num_hidden_layers=layers, **SMALL)
    elif kind == "albert":
        cfg = AlbertConfig(num_hidden_layers=layers, embedding_size=8, **SMALL)
    else:
        cfg = DistilBertConfig(n_layers=layers, dim=16, n_heads=2, hidden_dim=40, vocab_size=60,
                               max_position_embeddings=24, num_labels=3)
    return AutoModelForSequenceClassification.from_config(cfg).eval()


def batch(seed: int = 0, b: int = 3, t: int = 7, pad: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, t, dtype=torch.long)
    if pad:
        mask[0, t // 2:] = 0
    return {"input_ids": torch.randint(0, 60, (b, t), generator=g), "attention_mask": mask}


def tile(*, pwm_on=False, rows=512, cols=512, irdrop=False, r_wire=0.15, read_noise=False, adc=AdcKind.none,
         dynamic=False) -> TileConfig:
    rng = InputRange.dynamic if dynamic else InputRange.calibrated
    return TileConfig(name="test", analog=True, device=DeviceConfig(read_noise=read_noise),
                      circuit=CircuitConfig(rows=rows, cols=cols, irdrop=irdrop, r_wire_ohm=r_wire),
                      adc=AdcConfig(kind=adc), pwm=PwmConfig(enabled=pwm_on, input_range=rng))


def logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def calibrated(model, inputs, percentile=100.0):
    set_input_ranges(model, calibrate(model, [inputs], percentile))
    return model


# ----------------------------------------------------------------------------------------------------------------
# Which layers


def test_bert_conversion_covers_exactly_the_encoder_projections():
    model = model_of("bert")
    names = convert(model, tile())
    assert names == sorted(f"bert.encoder.layer.{i}.{n}" for i in range(2) for n in BERT_LAYER)
    assert list(analog_layers(model)) == names
    assert type(model.bert.pooler.dense) is nn.Linear and type(model.classifier) is nn.Linear
    assert convert(model) == names  # idempotent


def test_albert_shared_layer_is_one_module_reused_at_every_depth():
    model = model_of("albert", layers=3)
    names = convert(model)
    prefix = "albert.encoder.albert_layer_groups.0.albert_layers.0."
    assert names == sorted(prefix + n for n in ["attention.query", "attention.key", "attention.value",
                                                "attention.dense", "ffn", "ffn_output"])
    assert type(model.albert.encoder.embedding_hidden_mapping_in) is nn.Linear
    query = model.get_submodule(prefix + "attention.query")
    calls = []
    query.register_forward_hook(lambda m, i, o: calls.append(m))
    logits(model, batch())
    assert len(calls) == 3 and all(m is query for m in calls)


def test_distilbert_conversion():
    names = convert(model_of("distilbert"))
    layer = ["attention.k_lin", "attention.out_lin", "attention.q_lin", "attention.v_lin", "ffn.lin1", "ffn.lin2"]
    assert names == sorted(f"distilbert.transformer.layer.{i}.{n}" for i in range(2) for n in layer)


def test_unsupported_architecture_is_refused_with_the_supported_list():
    gpt2 = AutoModelForSequenceClassification.from_config(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=60,
                                                                     n_positions=24))
    with pytest.raises(ValueError, match=r"model_type='gpt2'.*albert, bert"):
        convert(gpt2)


def test_state_dict_and_checkpoints_are_unchanged(tmp_path):
    digital = model_of("bert", seed=1)
    model = model_of("bert", seed=2)
    keys = list(model.state_dict())
    convert(model)
    assert list(model.state_dict()) == keys
    model.load_state_dict(digital.state_dict())  # strict: a digital checkpoint loads into the converted model
    torch.testing.assert_close(logits(model, batch()), logits(digital, batch()), rtol=0, atol=0)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(reloaded, batch()), logits(digital, batch()), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------------
# Evaluation on tiles


@pytest.mark.parametrize("kind", ["bert", "albert", "distilbert"])
def test_digital_equivalent_tile_reproduces_the_digital_logits(kind):
    model, inputs = model_of(kind), batch()
    reference = logits(model, inputs)
    convert(model)
    program(calibrated(model, inputs), tile(), chip_seed=0)  # r_in = max|x|: nothing clips
    assert all(layer.mode == "analog" for layer in analog_layers(model).values())
    torch.testing.assert_close(logits(model, inputs), reference, rtol=1e-4, atol=1e-5)


def test_albert_shared_layer_is_programmed_once(monkeypatch):
    model, inputs = model_of("albert", layers=4), batch()
    convert(model)
    made = []
    monkeypatch.setattr(analog, "AnalogTileArray", lambda *a, **k: made.append(1) or AnalogTileArray(*a, **k))
    program(calibrated(model, inputs), tile(), chip_seed=0)
    assert len(made) == 6


@pytest.mark.parametrize("dynamic", [False, True])
def test_pwm_only_tile_is_the_product_of_quantized_inputs(dynamic):
    model, inputs = model_of("bert"), batch(pad=True)
    convert(model)
    calibrated(model, inputs, 99.0)  # some inputs clip: part of the quantization under test
    program(model, tile(pwm_on=True, dynamic=dynamic), chip_seed=0)
    seen = []
    for layer in analog_layers(model).values():
        layer.register_forward_hook(lambda m, i, o: seen.append((m, i[0], o)))
    logits(model, inputs)
    assert len(seen) == 12
    for layer, x, y in seen:
        r = x.abs().amax(-1, keepdim=True) if dynamic else layer.r_in
        x_q = pwm.dequantize(pwm.quantize(x, r, 8), r, 8).float()
        torch.testing.assert_close(y, F.linear(x_q, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(y, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_chip_seed_fixes_the_analog_outputs():
    model, inputs = model_of("bert"), batch()
    convert(model)
    calibrated(model, inputs, 99.9)
    cfg = tile(pwm_on=True, read_noise=True)
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        program(model, cfg, chip_seed=seed)
        runs[name] = logits(model, inputs)
    torch.testing.assert_close(runs["a"], runs["b"], rtol=0, atol=0)
    assert not torch.equal(runs["a"], runs["c"])


def test_program_needs_ranges_and_an_analog_tile():
    model = model_of("bert")
    convert(model)
    with pytest.raises(ValueError, match="set_input_ranges"):
        program(model, tile(), chip_seed=0)
    with pytest.raises(ValueError, match="analog=false"):
        program(model, dataclasses.replace(tile(), analog=False), chip_seed=0)


# ----------------------------------------------------------------------------------------------------------------
# Training modes


def single_layer(out=40, inp=48, seed=0) -> AnalogLinear:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(inp, out)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(out, inp, generator=g) * 0.1)
    layer = AnalogLinear(lin)
    layer.config = SimpleNamespace(model_type="bert")
    return layer


def test_hwa_noise_with_per_column_scaling_is_relative_to_each_tile_column():
    layer, sigma = single_layer(), 0.05
    with torch.no_grad():
        layer.weight.mul_(torch.logspace(-2, 0, 40)[:, None])  # outputs spanning two decades
    layer.r_in = 1.0
    cfg = tile(rows=16, cols=16)
    cfg.circuit.weight_scaling = WeightScaling.column
    set_mode(layer, TrainMode.hwa, cfg, noise_std=sigma, seed=0)
    layer.train()
    x = torch.eye(48)
    w1 = (layer(x) - layer.bias).T.detach()
    col_max = analog._block_abs_max(layer.weight.detach(), 16, 16, per_column=True)
    # The max over each output's 16 weights per row-block of 16 inputs (48 inputs: 3 blocks).
    expected = layer.weight.detach().abs().reshape(40, 3, 16).amax(2).repeat_interleave(16, 1)
    torch.testing.assert_close(col_max, expected, rtol=0, atol=0)
    rel = (w1 - layer.weight.detach()) / col_max
    assert abs(rel.std().item() / sigma - 1) < 0.05
    # Small outputs get small noise (per tile it would be relative to the block's largest output).
    assert (w1 - layer.weight.detach())[:8].abs().max() < 0.1 * (w1 - layer.weight.detach())[-8:].abs().max()


def test_hwa_noise_is_redrawn_every_training_forward_with_std_sigma():
    layer, sigma = single_layer(), 0.05
    layer.r_in = 1.0
    gen = set_mode(layer, TrainMode.hwa, tile(rows=16, cols=16), noise_std=sigma, seed=0)
    assert isinstance(gen, torch.Generator)
    x = torch.eye(48)  # y = x W^T + b: the rows of y - b are the noisy weights' columns
    layer.train()
    w1 = (layer(x) - layer.bias).T
    w2 = (layer(x) - layer.bias).T
    assert not torch.equal(w1, w2)
    block_max = analog._block_abs_max(layer.weight.detach(), 16, 16)
    rel = ((w1 - layer.weight) / block_max).detach()
    assert abs(rel.std().item() / sigma - 1) < 0.05 and abs(rel.mean().item()) < 0.01
    # Straight-through: the gradient is the digital one.
    layer.weight.grad = None
    layer(x).sum().backward()
    torch.testing.assert_close(layer.weight.grad, torch.ones(40, 48), rtol=0, atol=0)
    layer.eval()
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=0)


def test_hwa_noise_is_reproducible_from_the_seed_and_off_in_a_model_in_eval():
    model, inputs = model_of("bert"), batch()
    reference = logits(model, inputs)
    convert(model)
    outs = []
    for _ in range(2):
        set_mode(model, "hwa", tile(), noise_std=0.1, seed=7)
        model.train()
        torch.manual_seed(0)  # dropout
        outs.append(logits(model, inputs))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    assert not torch.allclose(outs[0], reference)
    model.eval()
    torch.testing.assert_close(logits(model, inputs), reference, rtol=0, atol=0)


@pytest.mark.parametrize("dynamic", [False, True])
def test_hwa_quantized_forward_matches_the_tile(dynamic):
    layer = single_layer(out=20, inp=50)
    layer.r_in = 2.0
    cfg = tile(pwm_on=True, rows=32, cols=16, adc=AdcKind.cco, dynamic=dynamic)
    set_mode(layer, "hwa", cfg, noise_std=0.0, quantize_inputs=True, quantize_outputs=True)
    layer.train()
    x = torch.randn(64, 50, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = layer(x)
    r = x.detach().abs().amax(-1, keepdim=True) if dynamic else 2.0
    expected = AnalogTileArray(layer.weight, cfg, dtype=torch.float32)(x.detach(), r) + layer.bias
    # One CCO count in output units, per output (two row-blocks: 32 + 18 inputs, same count size at most).
    lsb = analog._block_abs_max(layer.weight.detach(), 32, 16).amax(1) * 16.03 * r / (25 * 0.2 * 127)
    diff = (y - expected).abs()
    assert (diff <= 1e-3 * lsb).float().mean() > 0.99 and bool((diff <= 2.01 * lsb).all())  # rare edge flips
    assert not torch.allclose(y, F.linear(x, layer.weight, layer.bias), atol=1e-4)
    y.sum().backward()  # straight-through: gradients as if digital, at the quantized inputs
    x_q = pwm.dequantize(pwm.quantize(x.detach(), r, 8), r, 8).float()
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(64, -1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer.weight.grad, x_q.sum(0).expand(20, -1), rtol=1e-6, atol=1e-5)


def test_tile_aware_gradient_is_tau_times_upstream():
    layer = single_layer(out=20, inp=24)
    cfg = tile(rows=32, cols=16, irdrop=True, r_wire=20.0)
    set_mode(layer, "tile_aware", cfg, noise_std=0.0)
    layer.train()
    g = torch.Generator().manual_seed(2)
    x, upstream = torch.randn(5, 24, generator=g), torch.randn(5, 20, generator=g)
    tau = transfer_matrix(layer.weight, cfg)
    assert tau.min() < 0.97  # IR-drop is visible
    y = layer(x)
    torch.testing.assert_close(y, F.linear(x, tau * layer.weight, layer.bias), rtol=1e-6, atol=1e-6)
    (y * upstream).sum().backward()
    assert layer.weight.grad.abs().min() > 0
    torch.testing.assert_close(layer.weight.grad, tau * (upstream.T @ x), rtol=1e-6, atol=1e-6)


def test_tile_aware_refreshes_tau_after_weight_updates():
    layer = single_layer(out=20, inp=24)
    cfg = tile(rows=32, cols=16, irdrop=True, r_wire=20.0)
    set_mode(layer, "tile_aware", cfg, tau_refresh_steps=2)
    layer.train()
    x = torch.randn(5, 24)
    layer(x)
    tau0 = layer.tau.clone()
    for step in (1, 2):
        with torch.no_grad():
            layer.weight[:, :12] *= 3.0  # an optimizer step, in place
        layer(x)
        layer(x)  # a second use in the same step (as ALBERT's shared layer) refreshes nothing
        if step == 1:
            torch.testing.assert_close(layer.tau, tau0, rtol=0, atol=0)
    torch.testing.assert_close(layer.tau, transfer_matrix(layer.weight, cfg), rtol=0, atol=0)
    assert not torch.equal(layer.tau, tau0)


def test_tile_aware_without_irdrop_equals_hwa_and_digital():
    model, inputs = model_of("bert"), batch()
    convert(model)
    model.train()
    outs = {}
    for mode, sigma in (("hwa", 0.0), ("tile_aware", 0.0), ("hwa", 0.05), ("tile_aware", 0.05)):
        set_mode(model, mode, tile(), noise_std=sigma, seed=1)
        torch.manual_seed(0)  # dropout
        outs[mode, sigma] = logits(model, inputs)
    set_mode(model, "fp")
    torch.manual_seed(0)
    digital = logits(model, inputs)
    torch.testing.assert_close(outs["tile_aware", 0.0], digital, rtol=0, atol=0)
    torch.testing.assert_close(outs["hwa", 0.0], digital, rtol=0, atol=0)
    torch.testing.assert_close(outs["tile_aware", 0.05], outs["hwa", 0.05], rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------------
# Calibration


class Toy(nn.Module):
    """One analog layer fed the batch's own tensor ``x``."""

    config = SimpleNamespace(model_type="bert")

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([nn.Module()])
        self.encoder.layer[0].intermediate = nn.Module()
        self.encoder.layer[0].intermediate.dense = nn.Linear(2, 1)

    def forward(self, x, attention_mask=None):
        return self.encoder.layer[0].intermediate.dense(x)


def test_calibrate_returns_the_percentile_of_abs_inputs_over_real_tokens():
    model = Toy()
    assert convert(model) == ["encoder.layer.0.intermediate.dense"]
    x = torch.tensor([[[1.0, -2.0], [3.0, -4.0], [100.0, 100.0]]])  # [batch 1, tokens 3, in 2]; token 2 is padding
    b = {"x": x, "attention_mask": torch.tensor([[1, 1, 0]]), "labels": torch.tensor([0])}
    name = "encoder.layer.0.intermediate.dense"
    assert calibrate(model, [b], 100.0) == {name: 4.0}
    assert calibrate(model, [b], 50.0) == {name: 2.5}
    assert calibrate(model, [b, b], 50.0) == {name: 2.5}  # batches pool; deterministic
    b2 = {"x": -x[:, :2] * 2}
    assert calibrate(model, [b, b2], 100.0) == {name: 8.0}
    with pytest.raises(ValueError, match="missing"):
        set_input_ranges(model, {})
