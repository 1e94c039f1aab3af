"""MoViNet-A0: minimovinet equals the official model in every variant (see official_cases.py)."""
import pytest

from official_cases import VARIANTS, check_equals_official, check_checkpoint_reader_bit_exact, check_a0_stream_at_172, check_batch_of_two_equals_official, check_features_equal_official


@pytest.mark.parametrize("variant", VARIANTS)
def test_equals_official(variant, tmp_path):
    check_equals_official("a0", variant, tmp_path)


@pytest.mark.parametrize("variant", ["base", "stream"])
def test_checkpoint_reader_bit_exact(variant, tmp_path):
    check_checkpoint_reader_bit_exact("a0", variant, tmp_path)


def test_a0_stream_at_172(tmp_path):
    check_a0_stream_at_172(tmp_path)


def test_batch_of_two_equals_official():
    check_batch_of_two_equals_official()


@pytest.mark.parametrize("variant", VARIANTS)
def test_features_equal_official(variant, tmp_path):
    check_features_equal_official("a0", variant, tmp_path)

