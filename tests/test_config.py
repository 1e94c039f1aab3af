"""The architecture data equals the official block specs; configs reject nonsense."""
import pytest

from conftest import need  # noqa: E402

import minimovinet as mm
from minimovinet.config import BLOCK_SPECS, make_divisible, se_hidden_filters


def test_block_specs_equal_official():
    movinet = need("official.projects.movinet.modeling.movinet", "the Model Garden is the oracle")
    for model_id, (stem, groups, head) in BLOCK_SPECS.items():
        official = movinet.BLOCK_SPECS[model_id]
        assert (stem.filters, stem.kernel, stem.stride) == (
            official[0].filters, tuple(official[0].kernel_size), tuple(official[0].strides))
        assert len(groups) == len(official) - 2
        for group, spec in zip(groups, official[1:-1]):
            assert group.out_filters == spec.base_filters
            assert group.expand_filters == tuple(spec.expand_filters)
            assert group.kernels == tuple(tuple(k) for k in spec.kernel_sizes)
            assert group.strides == tuple(tuple(s) for s in spec.strides)
        assert (head.project_filters, head.hidden_filters) == (
            official[-1].project_filters, official[-1].head_filters)


def test_make_divisible_equals_official():
    nn_layers = need("official.vision.modeling.layers.nn_layers", "the Model Garden is the oracle")
    for value in [0.25 * e * m for e in range(8, 1000, 7) for m in (1, 2)]:
        assert make_divisible(value, 8) == nn_layers.make_divisible(value, 8), value
    assert se_hidden_filters(24, "2plus3d") == 16 and se_hidden_filters(24, "3d") == 8


def test_variant_presets():
    stream = mm.ModelConfig.from_variant("a3", "stream")
    assert stream.uses_positional_encoding and stream.conv_type == "2plus1d"
    assert not mm.ModelConfig.from_variant("a2", "stream").uses_positional_encoding
    mobile = mm.ModelConfig.from_variant("a0", "mobile")
    assert mobile.se_type == "none" and mobile.activation == "relu6"
    base = mm.ModelConfig.from_variant("a5", "base")
    assert not base.causal and base.conv_type == "3d"


@pytest.mark.parametrize("kwargs,match", [
    (dict(model_id="a9"), "unknown model_id"),
    (dict(conv_type="3d_2plus1d"), "unknown conv_type"),
    (dict(se_type="4d"), "unknown se_type"),
    (dict(activation="gelu"), "unknown activation"),
    (dict(causal=False, conv_type="2plus1d"), "causal models only"),
    (dict(num_classes=0), "num_classes"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mm.ModelConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown variant"):
        mm.ModelConfig.from_variant("a0", "fast")


def test_custom_block_spec():
    """A config of its own architecture (model_id 'custom'): its specs, JSON round trip, a
    float model of it that streams as it runs whole clips."""
    import json

    import numpy as np

    import minimovinet as mm
    from minimovinet.config import K13, K33, K53, S11, S12, GroupSpec, HeadSpec, StemSpec
    spec = (StemSpec(8, K13, S12),
            (GroupSpec(16, (24, 32), (K33, K53), (S12, S11)), GroupSpec(24, (48,), (K33,), (S12,))),
            HeadSpec(32, 64))
    cfg = mm.ModelConfig.from_variant("a0", "stream", num_classes=7)
    import dataclasses
    cfg = dataclasses.replace(cfg, model_id="custom", block_spec=spec)
    assert cfg.stem == spec[0] and cfg.groups == spec[1] and cfg.head == spec[2]
    back = mm.ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert "block_spec" not in mm.ModelConfig.from_variant("a0", "stream").to_dict()
    with pytest.raises(mm.ConfigError, match="model_id 'custom'"):
        dataclasses.replace(cfg, model_id="a0")
    with pytest.raises(mm.ConfigError, match="unknown model_id 'custom'"):
        mm.ModelConfig(model_id="custom")
    with pytest.raises(mm.ConfigError, match="bad block_spec"):
        mm.ModelConfig.from_dict({**cfg.to_dict(), "block_spec": [1, 2]})
    params = mm.float32.params.random_params(cfg, seed=1)
    model = mm.Movinet(cfg, params)
    clip = np.random.default_rng(0).random((1, 4, 32, 32, 3), dtype=np.float32)
    whole = model(clip)
    states = model.init_states(1, 32, 32)
    for t in range(4):
        logits, states = model(clip[:, t:t + 1], states)
    np.testing.assert_allclose(logits, whole, rtol=1e-4, atol=1e-5)
    assert model.input_spec.fps == 5 and whole.shape == (1, 7)

