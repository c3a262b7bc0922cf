"""Stock JupyterHub for benchmarks/launch_herd.py: ltiauthenticator's LTI 1.1, DockerSpawner."""

# Nothing of LearnHub: what an operator gets from the upstream projects' documentation.
# launch_herd.py passes the run's values (ports, LTI consumer, Docker network, image, limits)
# as BENCH_* environment variables, so both systems get the same machine, image and limits.

import os
from pathlib import Path

bench = {k[len("BENCH_") :].lower(): v for k, v in os.environ.items() if k.startswith("BENCH_")}
state = Path(bench["state_dir"])
c = get_config()  # noqa: F821 (JupyterHub provides get_config)

c.JupyterHub.bind_url = bench["bind_url"]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
# Containers reach the hub API at their network's gateway, an address of this machine.
c.JupyterHub.hub_ip = bench["gateway"]
c.JupyterHub.hub_port = int(bench["hub_port"])
c.JupyterHub.hub_connect_ip = bench["gateway"]
# launch_herd.py removes the containers itself; a hub stopping 30 of them would only be slower.
c.JupyterHub.cleanup_servers = False

c.ConfigurableHTTPProxy.command = [bench["proxy_command"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{bench['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

c.JupyterHub.authenticator_class = "ltiauthenticator.lti11.auth.LTI11Authenticator"
c.LTI11Authenticator.consumers = {bench["consumer_key"]: bench["consumer_secret"]}
c.LTI11Authenticator.username_key = "user_id"
# JupyterHub 5+ lets nobody in without an allow rule; an LMS decides who may launch.
c.Authenticator.allow_all = True

c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = bench["image"]
# The image is built on this machine; no registry is ever asked.
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = bench["prefix"]
c.DockerSpawner.network_name = bench["network"]
c.DockerSpawner.host_ip = "127.0.0.1"
c.DockerSpawner.cpu_limit = float(bench["cpu_limit"])
c.DockerSpawner.mem_limit = bench["mem_limit"]
# DockerSpawner's documented way to keep a learner's files: a named volume per user.
c.DockerSpawner.volumes = {bench["volume_template"]: bench["home_dir"]}
c.DockerSpawner.extra_create_kwargs = {"labels": {bench["label"]: bench["run_id"]}}
c.Spawner.default_url = "/lab"
# The same start timeouts as LearnHub's default spawner.start_timeout.
c.Spawner.start_timeout = int(bench["start_timeout"])
c.Spawner.http_timeout = int(bench["start_timeout"])
