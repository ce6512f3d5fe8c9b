"""A torch.nn.Module compiled directly (torch is optional: skipped, saying
so, where it is not installed)."""

import numpy as np
import pytest

import heman
from conftest import CALIBRATION, digits

torch = pytest.importorskip("torch", reason="torch is not installed: the torch.nn.Module path is untested here")


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        Square(),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 10),
    )


def test_a_torch_module_runs_encrypted():
    module = small_cnn()
    with np.load(CALIBRATION) as archive:
        calibration = np.concatenate([archive[k] for k in archive.files])
    example = torch.zeros(1, 1, 8, 8)
    model = heman.compile(module, calibration, example_input=example, progress=False)
    client = heman.Client(model.keyparams).keygen(progress=False)
    for x, _ in digits(2):
        y = client.decrypt(model.run(client.encrypt(x), client.eval_keys))
        with torch.no_grad():
            expected = module(torch.as_tensor(x, dtype=torch.float32)).numpy()
        deviation = np.max(np.abs(y - expected))
        assert deviation <= 0.05 * np.max(np.abs(expected)), deviation
        assert y.argmax() == expected.argmax()


def test_a_module_without_an_example_input_is_refused():
    with pytest.raises(TypeError, match="example_input"):
        heman.compile(small_cnn(), CALIBRATION)
