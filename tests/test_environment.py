import json
import platform

import nerbench
from nerbench.environment import describe_device, environment


def test_environment_fields_on_cpu(monkeypatch):
    monkeypatch.setattr("nerbench.environment.cuda_device_names", lambda: [])
    env = environment()
    json.dumps(env)  # stored as JSON: must be plain data
    assert env["devices"] == [] and env["num_devices"] == 1
    assert env["driver"] is None and env["cuda"] is None
    assert env["cpu_threads"] >= 1 and env["cpu_model"]
    assert env["python"] == platform.python_version()
    assert env["nerbench"] == nerbench.__version__
    for package in ("torch", "transformers", "peft"):
        assert env[package], package
    assert env["device_name"].startswith("CPU: ")


def test_environment_with_a_gpu(monkeypatch):
    monkeypatch.setattr("nerbench.environment.cuda_device_names", lambda: ["NVIDIA H100 80GB HBM3"] * 2)
    monkeypatch.setattr("nerbench.environment.nvidia_driver_version", lambda: "570.86.15")
    env = environment()
    assert env["devices"] == ["NVIDIA H100 80GB HBM3"] * 2 and env["num_devices"] == 2
    assert env["device_name"] == "NVIDIA H100 80GB HBM3"
    assert env["driver"] == "570.86.15"


def test_cpu_device_description():
    name, count = describe_device("cpu")
    assert name.startswith("CPU: ") and count == 1


def test_environment_does_not_import_the_timing_layer():
    # timing imports environment (to name the device); the reverse would be an import cycle.
    import subprocess
    import sys

    code = "import sys, nerbench.environment; print('nerbench.timing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
