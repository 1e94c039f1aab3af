"""MoViNet-A3: minimovinet equals the official model in every variant (see official_cases.py)."""
import pytest

from official_cases import VARIANTS, check_equals_official, check_checkpoint_reader_bit_exact, check_float32_noise_floor


@pytest.mark.parametrize("variant", VARIANTS)
def test_equals_official(variant, tmp_path):
    check_equals_official("a3", variant, tmp_path)


@pytest.mark.parametrize("variant", ["base", "stream"])
def test_checkpoint_reader_bit_exact(variant, tmp_path):
    check_checkpoint_reader_bit_exact("a3", variant, tmp_path)


def test_float32_noise_floor(tmp_path):
    check_float32_noise_floor(tmp_path)
