"""Writes data/instance_types.tsv: vCPUs, memory, GPUs and other accelerators of every EC2
instance type and every SageMaker (`ml.`) instance type.

Sources (named in the file's header):
- EC2: the `DescribeInstanceTypes` dump moto ships (`moto/ec2/resources/instance_types.json.gz`,
  moto as pinned in tests/requirements.txt), which moto's maintainers generate from the real
  API. Retired types it no longer lists (p2, p3, dl1, f1, g3, ...) come from an older moto
  wheel given on the command line (its `moto/ec2/resources/instance_types.json`); the newer
  dump wins where both have a type.
- SageMaker: the `ml.*` values of the instance-type enums of botocore's SageMaker service model
  (TrainingInstanceType, ProductionVariantInstanceType, ...; the Elastic Inference accelerator
  enums left out, they are not instance types). SageMaker's `ml.X` runs on EC2's `X`, so its
  figures are `X`'s; `ml.` types with no EC2 counterpart in the dumps are listed on stderr and
  left out (they are then reported as unknown at run time, never guessed).

GPUs are `GpuInfo` devices, except Habana Gaudi (which DescribeInstanceTypes lists as a GPU):
it counts as an accelerator, with Trainium and Inferentia (`NeuronInfo`, else
`InferenceAcceleratorInfo`), FPGAs (`FpgaInfo`) and media accelerators (`MediaAcceleratorInfo`).

Regenerate after upgrading moto or botocore:

    .venv/bin/pip download --no-deps moto==4.2.14 -d /tmp/moto-old
    .venv/bin/python data/gen_instance_types.py /tmp/moto-old/moto-4.2.14-py2.py3-none-any.whl
"""

import gzip
import json
import os
import sys
import zipfile

import botocore
import botocore.session
import moto

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance_types.tsv")
# Accelerators DescribeInstanceTypes reports under GpuInfo that are not GPUs.
NOT_GPU_MANUFACTURERS = {"Habana"}
# SageMaker enums of accelerators attached to an instance, not instance types.
ACCELERATOR_ENUMS = {"NotebookInstanceAcceleratorType", "ProductionVariantAcceleratorType"}


def current_dump():
    path = os.path.join(os.path.dirname(moto.__file__), "ec2", "resources", "instance_types.json.gz")
    with gzip.open(path) as f:
        return json.load(f)


def wheel_dump(wheel):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith("moto/ec2/resources/instance_types.json"):
                return json.loads(z.read(name))
            if name.endswith("moto/ec2/resources/instance_types.json.gz"):
                return json.loads(gzip.decompress(z.read(name)))
    raise SystemExit(f"{wheel}: no moto/ec2/resources/instance_types.json in it")


def figures(t):
    vcpus = t.get("VCpuInfo", {}).get("DefaultVCpus")
    memory = t.get("MemoryInfo", {}).get("SizeInMiB")
    gpus = accelerators = 0
    for g in t.get("GpuInfo", {}).get("Gpus", []):
        if g.get("Manufacturer") in NOT_GPU_MANUFACTURERS:
            accelerators += g.get("Count", 0)
        else:
            gpus += g.get("Count", 0)
    neuron = sum(d.get("Count", 0) for d in t.get("NeuronInfo", {}).get("NeuronDevices", []))
    inference = sum(a.get("Count", 0) for a in t.get("InferenceAcceleratorInfo", {}).get("Accelerators", []))
    # Inferentia is listed both as a Neuron device and as an inference accelerator.
    accelerators += neuron or inference
    accelerators += sum(f.get("Count", 0) for f in t.get("FpgaInfo", {}).get("Fpgas", []))
    accelerators += sum(a.get("Count", 0) for a in t.get("MediaAcceleratorInfo", {}).get("Accelerators", []))
    if vcpus is None or memory is None:
        raise SystemExit(f"{t.get('InstanceType')}: no VCpuInfo or MemoryInfo")
    return vcpus, memory, gpus, accelerators


def sagemaker_types():
    model = botocore.session.get_session().get_service_model("sagemaker")
    names = set()
    for shape_name in model.shape_names:
        if shape_name in ACCELERATOR_ENUMS:
            continue
        shape = model.shape_for(shape_name)
        if shape.type_name == "string" and shape.enum:
            names.update(e for e in shape.enum if e.startswith("ml."))
    return sorted(names)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: gen_instance_types.py OLDER_MOTO_WHEEL (see the module doc)")
    current = current_dump()
    older = wheel_dump(sys.argv[1])
    rows = {}
    for name, t in older.items():
        rows[name] = figures(t) + (0,)
    for name, t in current.items():
        rows[name] = figures(t) + (1,)
    left_out = []
    for ml in sagemaker_types():
        base = rows.get(ml[3:])
        if base is None:
            left_out.append(ml)
        else:
            rows[ml] = base
    if left_out:
        print("SageMaker types with no EC2 counterpart, left out: " + ", ".join(left_out), file=sys.stderr)
    older_version = os.path.basename(sys.argv[1]).split("-")[1]
    with open(OUT, "w") as f:
        f.write(
            "# EC2 and SageMaker instance types: vCPUs, memory (MiB), GPUs, other accelerators\n"
            "# (Trainium, Inferentia, Gaudi, FPGAs, media), and whether the newer dump lists it.\n"
            f"# EC2: DescribeInstanceTypes as shipped by moto {moto.__version__}"
            " (moto/ec2/resources/instance_types.json.gz),\n"
            f"# retired types from moto {older_version}. SageMaker: the ml.* instance-type enums of"
            f" botocore {botocore.__version__}'s\n"
            "# sagemaker model, with the figures of the EC2 type they run on.\n"
            "# Generated by data/gen_instance_types.py; do not edit.\n"
            "type\tvcpus\tmemory_mib\tgpus\taccelerators\tcurrent\n"
        )
        for name in sorted(rows):
            v, m, g, a, c = rows[name]
            f.write(f"{name}\t{v}\t{m}\t{g}\t{a}\t{c}\n")
    print(f"{len(rows)} instance types written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
