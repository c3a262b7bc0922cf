"""`learnhub images build`: the learner, grading-sandbox and hub images."""

from __future__ import annotations

import sys

from ..hub_image import build_hub_image
from ..images import (
    DEBIAN_SUITE,
    DEFAULT_BASE_IMAGE,
    GRADER_REPOSITORY,
    LEARNER_REPOSITORY,
    LOCAL_BASE_IMAGE,
    DockerEngine,
    ImageBuildError,
    build_grader_image,
    build_learner_image,
    check_registry,
    push_images,
)


def cmd_build(settings, args) -> int:
    try:
        if args.push:
            check_registry(args.push)  # before a build that may take minutes
        builds = [
            build_learner_image(
                base_image=args.base_image, no_cache=args.no_cache, pull=not args.no_pull
            ),
            build_grader_image(no_cache=args.no_cache),
        ]
        if getattr(args, "hub", False):
            builds.append(
                build_hub_image(
                    base_image=args.base_image, no_cache=args.no_cache, pull=not args.no_pull
                )
            )
        if args.push:
            pushed = push_images(
                DockerEngine(), args.push, [tag for build in builds for tag in build.tags]
            )
            print("\nPushed; name these in spawner.images and grading.image for every node:")
            for target, digest in pushed.items():
                print(f"  {target}  {digest}")
    except ImageBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def add_commands(subparsers) -> None:
    """Add `learnhub images build` to the CLI's subcommands."""
    images = subparsers.add_parser("images", help="build the container images LearnHub runs")
    actions = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help=f"build the learner image ({LEARNER_REPOSITORY}:<version> and :latest) and the "
        f"grading sandbox's image on it ({GRADER_REPOSITORY})",
        description=f"Build the learner image on --base-image (default {DEFAULT_BASE_IMAGE}) "
        "when it is here or can be pulled; else on a local Debian "
        f"{DEBIAN_SUITE} ({LOCAL_BASE_IMAGE}, made once with debootstrap, as root).",
    )
    build.add_argument(
        "--base-image",
        help=f"the image to build on (default {DEFAULT_BASE_IMAGE}, with the local Debian "
        "base as a fallback); needs Python 3.11 or Debian's apt",
    )
    build.add_argument(
        "--no-cache", action="store_true", help="rebuild every layer (docker build --no-cache)"
    )
    build.add_argument(
        "--no-pull",
        action="store_true",
        help="never contact a registry: use the base image if it is here, else the local base",
    )
    build.add_argument(
        "--hub",
        action="store_true",
        help="also build the hub image of deploy/compose (learnhub/hub:<version> and :latest) "
        "on the same base",
    )
    build.add_argument(
        "--push",
        metavar="REGISTRY",
        help="then tag every image built as REGISTRY/<name>:<tag> and push it there (host[:port], "
        "e.g. registry.example.edu:5000): the registry the nodes of a cluster pull from",
    )
    build.set_defaults(func=cmd_build)
