import json
import platform

import nerbench
from nerbench.environment import describe_device, environment, is_reference_hardware
from nerbench.timing import TimingProtocol


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


def test_reference_hardware_is_one_h100_80gb_hbm3():
    assert is_reference_hardware("NVIDIA H100 80GB HBM3", 1)
    assert is_reference_hardware(" nvidia h100 80gb hbm3 ", 1)
    assert not is_reference_hardware("NVIDIA H100 80GB HBM3", 2)
    assert not is_reference_hardware("NVIDIA H100 PCIe", 1)
    assert not is_reference_hardware("NVIDIA H200", 1)
    assert not is_reference_hardware("CPU: AMD EPYC (2 threads)", 1)
    custom = TimingProtocol(reference_device_names=("NVIDIA H200",))
    assert is_reference_hardware("NVIDIA H200", 1, custom)
