"""docs/scale-out.md's KubeRay manifest has the shape the Kubernetes path needs (issue 18 item 5).

No Kubernetes schema linter runs offline with the RayCluster CRD's schema, so the checks here are
the manifest's own promises: the kind, the groups, the image built with the scale extra, and the
storage URL and keys from a secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "scale-out.md").read_text()


def manifest() -> dict[str, Any]:
    block = re.search(r"```yaml\n(.*?)```", DOC, re.S)
    assert block is not None
    data = yaml.safe_load(block.group(1))
    assert isinstance(data, dict)
    return data


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    return list(template["spec"]["containers"])


def test_the_manifest_is_a_raycluster_of_the_scale_image() -> None:
    data = manifest()
    assert (data["apiVersion"], data["kind"]) == ("ray.io/v1", "RayCluster")
    head = containers(data["spec"]["headGroupSpec"]["template"])
    (workers,) = data["spec"]["workerGroupSpecs"]
    assert workers["replicas"] >= 1 and workers["minReplicas"] <= workers["maxReplicas"]
    pods = head + containers(workers["template"])
    built = re.search(r"docker build --build-arg EXTRAS=scale -t (\S+) \.", DOC)
    assert built is not None
    assert {pod["image"] for pod in pods} == {built.group(1)}
    for pod in pods:
        assert pod["envFrom"] == [{"secretRef": {"name": "perstack-env"}}]
        assert pod["resources"]["limits"]["cpu"]


def test_the_ray_version_is_the_one_the_extra_allows() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    low, high = re.search(r'"ray>=([\d.]+),<(\d+)"', pyproject).groups()  # type: ignore[union-attr]
    version = manifest()["spec"]["rayVersion"]
    assert tuple(map(int, version.split("."))) >= tuple(map(int, low.split(".")))
    assert int(version.split(".")[0]) < int(high)


def test_the_dockerfile_builds_the_extra_the_docs_ask_for() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ARG EXTRAS=""' in dockerfile
    assert '"${wheel}${EXTRAS:+[$EXTRAS]}"' in dockerfile
