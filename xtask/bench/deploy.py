# W1 "fanout" for pyinfra (`cargo xtask bench`): the same 21 operations per host as
# playbooks/bench/w1.rhai. Run as `pyinfra INVENTORY deploy.py --parallel H -y` with the
# inventory the bench writes to target/bench/pyinfra_inventory.py.
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

TEMPLATE = str(Path(__file__).parent / "templates" / "w1.txt.j2")

files.directory(name="w1 directory", path="/tmp/w1", mode="0755")
for i in range(10):
    files.template(
        name=f"w1 file {i}",
        src=TEMPLATE,
        dest=f"/tmp/w1/f{i}.txt",
        mode="0644",
        host_name=host.name,
        i=i,
    )
for i in range(5):
    server.shell(name=f"w1 command {i}", commands=[f"echo {i} >/dev/null"])
for i in range(5):
    files.directory(name=f"w1 dir {i}", path=f"/tmp/w1/d{i}", mode="0750")
