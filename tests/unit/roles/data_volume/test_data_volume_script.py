# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The data_volume role's mount keeper (roles/data_volume/files/spotmax-data-volume) against simulated instances.

Each test builds an instance's device tree in a temporary directory: /dev nodes and udev links, /sys/class/block
entries (major:minor, partitions, NVMe serials and models), /proc/self/mountinfo, and stand-ins for blkid, mkfs and
mount that read and write that tree. The outcome checked is the simulated mount table after the run: which device
ended up at the mount point, if any. Nothing touches the real /dev and no root is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[4] / "roles" / "data_volume" / "files" / "spotmax-data-volume"
EBS = "Amazon Elastic Block Store"
INSTANCE_STORE = "Amazon EC2 NVMe Instance Storage"
ROOT_VOLUME = "vol-0aaaaaaaaaaaaaaa0"
DATA_VOLUME = "vol-0123456789abcdef0"
OTHER_VOLUME = "vol-0fedcba9876543210"
RUN_TIMEOUT = 30

# Stand-ins for the commands the script runs. They read and write the simulated tree under $SIM.
FAKE_BLKID = r"""#!/bin/sh
# blkid -p -o export DEVICE
for last; do :; done
name=$(basename "$(readlink -f "$last")")
[ -f "$SIM/blkid/$name" ] || exit 2
cat "$SIM/blkid/$name"
"""
FAKE_MKFS = r"""#!/bin/sh
# mkfs -t TYPE [-L LABEL] DEVICE
echo "mkfs $*" >>"$SIM/calls"
type=''; label=''
while [ $# -gt 1 ]; do
    case $1 in -t) type=$2; shift 2 ;; -L) label=$2; shift 2 ;; *) shift ;; esac
done
name=$(basename "$(readlink -f "$1")")
{ echo "TYPE=$type"; [ -n "$label" ] && echo "LABEL=$label"; } >"$SIM/blkid/$name"
"""
FAKE_MOUNT = r"""#!/bin/sh
# mount -t TYPE -o OPTIONS DEVICE MOUNTPOINT: adds the mount to the simulated mount table.
echo "mount $*" >>"$SIM/calls"
if [ -f "$SIM/mount-fails" ]; then echo "mount: wrong fs type, bad option, bad superblock" >&2; exit 32; fi
type=''; opts=''
while [ $# -gt 2 ]; do
    case $1 in -t) type=$2; shift 2 ;; -o) opts=$2; shift 2 ;; *) shift ;; esac
done
[ -f "$SIM/mount-lies" ] && exit 0
name=$(basename "$(readlink -f "$1")")
majmin=$(cat "$SIM/sys/class/block/$name/dev")
echo "99 1 $majmin / $2 $opts shared:99 - $type /dev/$name rw" >>"$SIM/proc/self/mountinfo"
"""


class Instance:
    """An EC2 instance's block devices as the script sees them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dev = root / "dev"
        self.sys = root / "sys"
        self.mountinfo = root / "proc" / "self" / "mountinfo"
        self.mount_point = root / "mnt" / "data"
        self.config = root / "data-volume.conf"
        self.minor = 0
        for d in (self.dev / "disk" / "by-id", self.dev / "disk" / "by-label", self.dev / "disk" / "by-uuid"):
            d.mkdir(parents=True)
        (self.sys / "class" / "block").mkdir(parents=True)
        (self.sys / "devices").mkdir()
        (root / "blkid").mkdir()
        (root / "bin").mkdir()
        self.mountinfo.parent.mkdir(parents=True)
        self.mountinfo.write_text("")
        for name, text in (("blkid", FAKE_BLKID), ("mkfs", FAKE_MKFS), ("mount", FAKE_MOUNT)):
            path = root / "bin" / name
            path.write_text(text)
            path.chmod(0o755)

    def _block(self, name: str, sysdir: Path, major: int, fs: str | None, label: str | None, uuid: str | None) -> None:
        self.minor += 1
        sysdir.mkdir(parents=True)
        (sysdir / "dev").write_text(f"{major}:{self.minor}\n")
        (sysdir / "holders").mkdir()
        (self.sys / "class" / "block" / name).symlink_to(os.path.relpath(sysdir, self.sys / "class" / "block"))
        (self.dev / name).write_text("")
        if fs:
            lines = [f"TYPE={fs}"] + ([f"LABEL={label}"] if label else []) + ([f"UUID={uuid}"] if uuid else [])
            (self.root / "blkid" / name).write_text("\n".join(lines) + "\n")
        if label:
            # udev escapes "/" (Amazon Linux labels its root filesystem "/").
            (self.dev / "disk" / "by-label" / label.replace("/", "\\x2f")).symlink_to(f"../../{name}")
        if uuid:
            (self.dev / "disk" / "by-uuid" / uuid).symlink_to(f"../../{name}")

    def nvme(
        self,
        name: str,
        volume_id: str | None = None,
        model: str = EBS,
        fs: str | None = None,
        label: str | None = None,
        uuid: str | None = None,
    ) -> str:
        """An NVMe namespace (nvme1n1); an EBS volume reports its id, without the dash, as controller serial."""
        sysdir = self.sys / "devices" / name
        self._block(name, sysdir, 259, fs, label, uuid)
        (sysdir / "device").mkdir()
        (sysdir / "device" / "model").write_text(f"{model:<40}\n")
        serial = volume_id.replace("-", "") if volume_id else "AWS1234567890ABCDEF"
        (sysdir / "device" / "serial").write_text(f"{serial:<20}\n")
        if model == EBS:
            (self.dev / "disk" / "by-id" / f"nvme-Amazon_Elastic_Block_Store_{serial}").symlink_to(f"../../{name}")
        return name

    def xen(self, name: str, fs: str | None = None, label: str | None = None, uuid: str | None = None) -> str:
        """A Xen block device (xvdf): no serial, no volume id."""
        self._block(name, self.sys / "devices" / name, 202, fs, label, uuid)
        return name

    def partition(
        self, disk: str, name: str, fs: str | None = None, label: str | None = None, uuid: str | None = None
    ) -> str:
        sysdir = self.sys / "devices" / disk / name
        self._block(name, sysdir, 259, fs, label, uuid)
        (sysdir / "partition").write_text(name[-1] + "\n")
        return name

    def link(self, alias: str, name: str) -> None:
        """A udev link such as Amazon Linux's /dev/sdf -> nvme1n1."""
        (self.dev / alias).symlink_to(name)

    def majmin(self, name: str) -> str:
        return (self.sys / "class" / "block" / name / "dev").read_text().strip()

    def mount(self, name: str, mount_point: str | Path, fstype: str = "xfs") -> None:
        with self.mountinfo.open("a") as f:
            f.write(f"{20 + self.minor} 1 {self.majmin(name)} / {mount_point} rw shared:1 - {fstype} /dev/{name} rw\n")

    def configure(self, **settings: str | int | bool) -> None:
        settings.setdefault("mount_point", str(self.mount_point))
        settings.setdefault("wait_seconds", 2)
        lines = ["# test configuration"]
        for key, value in settings.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f'DATA_VOLUME_{key.upper()}="{text}"')
        self.config.write_text("\n".join(lines) + "\n")

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SIM": str(self.root),
            "SPOTMAX_DV_DEV_ROOT": str(self.dev),
            "SPOTMAX_DV_SYS_ROOT": str(self.sys),
            "SPOTMAX_DV_MOUNTINFO": str(self.mountinfo),
            "SPOTMAX_DV_MOUNT": str(self.root / "bin" / "mount"),
            "SPOTMAX_DV_BLKID": str(self.root / "bin" / "blkid"),
            "SPOTMAX_DV_MKFS": str(self.root / "bin" / "mkfs"),
            "SPOTMAX_DV_POLL_SECONDS": "0.2",
        }
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [shutil.which("bash") or "/bin/bash", str(SCRIPT), "--config", str(self.config), *args]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), env=self.env(**env), capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )

    def mounted_at(self, mount_point: str | Path) -> list[str]:
        """Kernel names of what the simulated mount table shows at a mount point, in mount order."""
        by_majmin = {self.majmin(p.name): p.name for p in (self.sys / "class" / "block").iterdir()}
        return [
            by_majmin.get(fields[2], fields[2])
            for fields in (line.split() for line in self.mountinfo.read_text().splitlines())
            if fields[4] == str(mount_point)
        ]

    def calls(self) -> str:
        path = self.root / "calls"
        return path.read_text() if path.exists() else ""


@pytest.fixture(name="nitro")
def nitro_fixture(tmp_path: Path) -> Instance:
    """A Nitro instance: root volume nvme0n1, root filesystem on nvme0n1p1."""
    inst = Instance(tmp_path)
    inst.nvme("nvme0n1", ROOT_VOLUME)
    inst.partition("nvme0n1", "nvme0n1p1", fs="xfs", label="/", uuid="11111111-1111-4111-8111-111111111111")
    inst.mount("nvme0n1p1", "/")
    return inst


@pytest.fixture(name="xen")
def xen_fixture(tmp_path: Path) -> Instance:
    """A Xen instance (t2, m4): root disk xvda, root filesystem on xvda1."""
    inst = Instance(tmp_path)
    inst.xen("xvda")
    inst.partition("xvda", "xvda1", fs="ext4", label="cloudimg-rootfs")
    inst.mount("xvda1", "/", "ext4")
    return inst


def assert_error(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert result.returncode == code, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


# --- identification ------------------------------------------------------------------------------


def test_nitro_one_data_volume_by_volume_id(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME)

    result = nitro.run()

    assert result.returncode == 0, result.stderr
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1"]
    assert f"mounted /dev/nvme1n1 (volume {DATA_VOLUME}) (xfs) at {nitro.mount_point}" in result.stderr
    assert "mount -t xfs -o defaults " in nitro.calls()


def test_volume_id_without_dash_is_accepted(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME.replace("-", ""))

    assert nitro.run().returncode == 0
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1"]


@pytest.mark.parametrize("data_first", [True, False], ids=["data-on-nvme1n1", "data-on-nvme2n1"])
def test_nitro_two_extra_volumes_mounts_the_configured_one(nitro: Instance, data_first: bool) -> None:
    # The seed's script greps lsblk for "a disk that is not the root disk" and takes whatever it finds first.
    names = ["nvme1n1", "nvme2n1"] if data_first else ["nvme2n1", "nvme1n1"]
    nitro.nvme(names[0], DATA_VOLUME, fs="xfs")
    nitro.nvme(names[1], OTHER_VOLUME, fs="xfs", label="scratch")
    nitro.nvme("nvme3n1", model=INSTANCE_STORE)
    nitro.configure(id=DATA_VOLUME)

    result = nitro.run()

    assert result.returncode == 0, result.stderr
    assert nitro.mounted_at(nitro.mount_point) == [names[0]]
    assert nitro.mounted_at(nitro.mount_point) != [names[1]]


def test_only_another_extra_volume_attached_is_never_mounted(nitro: Instance) -> None:
    # The seed's failure: the kept volume is not attached (yet), another one is; the seed mounts that one.
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME, wait_seconds=1)

    result = nitro.run()

    assert_error(result, 1, "not found after 1 s", f"volume {DATA_VOLUME}", "data_volume_wait_seconds")
    assert nitro.mounted_at(nitro.mount_point) == []
    assert "mount " not in nitro.calls()


def test_volume_found_through_sysfs_serial_without_udev_link(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    (nitro.dev / "disk" / "by-id" / f"nvme-Amazon_Elastic_Block_Store_{DATA_VOLUME.replace('-', '')}").unlink()
    nitro.configure(id=DATA_VOLUME)

    assert nitro.run().returncode == 0
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1"]


def test_xen_mapping_name_sdf_is_xvdf(xen: Instance) -> None:
    xen.xen("xvdg", fs="ext4", label="scratch")
    xen.xen("xvdf", fs="ext4")
    xen.configure(device="/dev/sdf")

    result = xen.run()

    assert result.returncode == 0, result.stderr
    assert xen.mounted_at(xen.mount_point) == ["xvdf"]


def test_xen_volume_id_with_device_name_uses_the_device_name(xen: Instance) -> None:
    xen.xen("xvdf", fs="ext4")
    xen.configure(id=DATA_VOLUME, device="/dev/sdf")

    assert xen.run().returncode == 0
    assert xen.mounted_at(xen.mount_point) == ["xvdf"]


def test_xen_volume_id_alone_explains_that_xen_has_no_serial(xen: Instance) -> None:
    xen.xen("xvdf", fs="ext4")
    xen.configure(id=DATA_VOLUME, wait_seconds=0)

    result = xen.run()

    assert_error(result, 1, "exposes no volume id", "DATA_VOLUME_DEVICE (data_volume_device)")
    assert xen.mounted_at(xen.mount_point) == []


def test_nitro_device_name_through_amazon_linux_udev_link(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs")
    nitro.nvme("nvme2n1", DATA_VOLUME, fs="xfs")
    nitro.link("sdf", "nvme2n1")
    nitro.configure(id=DATA_VOLUME, device="/dev/sdf")

    assert nitro.run().returncode == 0
    assert nitro.mounted_at(nitro.mount_point) == ["nvme2n1"]


def test_nitro_device_name_holding_another_volume_is_refused(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs")
    nitro.nvme("nvme2n1", DATA_VOLUME, fs="xfs")
    nitro.link("sdf", "nvme1n1")
    nitro.configure(id=DATA_VOLUME, device="/dev/sdf", wait_seconds=30)

    started = time.monotonic()
    result = nitro.run()

    assert_error(result, 1, f"/dev/nvme1n1, which is volume {OTHER_VOLUME}, not {DATA_VOLUME}")
    assert time.monotonic() - started < 10  # a contradiction is reported at once, not after the wait
    assert nitro.mounted_at(nitro.mount_point) == []


def test_nitro_device_name_on_an_instance_store_is_refused_with_a_volume_id(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", model=INSTANCE_STORE)
    nitro.link("sdf", "nvme1n1")
    nitro.configure(id=DATA_VOLUME, device="/dev/sdf")

    assert_error(nitro.run(), 1, "/dev/nvme1n1, an NVMe device that is not an EBS volume")
    assert nitro.mounted_at(nitro.mount_point) == []


def test_by_label(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs", label="scratch")
    nitro.nvme("nvme2n1", DATA_VOLUME, fs="xfs", label="spotmax-data")
    nitro.configure(label="spotmax-data")

    assert nitro.run().returncode == 0
    assert nitro.mounted_at(nitro.mount_point) == ["nvme2n1"]


def test_by_uuid(nitro: Instance) -> None:
    uuid = "0f4c1d8e-5b6a-4c1e-9a53-2d4f8e7b6a10"
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs", uuid="22222222-2222-4222-8222-222222222222")
    nitro.nvme("nvme2n1", DATA_VOLUME, fs="xfs", uuid=uuid)
    nitro.configure(uuid=uuid)

    assert nitro.run().returncode == 0
    assert nitro.mounted_at(nitro.mount_point) == ["nvme2n1"]


def test_label_on_another_volume_than_the_volume_id_is_refused(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs", label="spotmax-data")
    nitro.nvme("nvme2n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME, label="spotmax-data")

    assert_error(nitro.run(), 1, "/dev/nvme1n1, not on the volume's device /dev/nvme2n1")
    assert nitro.mounted_at(nitro.mount_point) == []


def test_partitioned_volume_label_chooses_the_partition(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME)
    nitro.partition("nvme1n1", "nvme1n1p1", fs="ext4", label="spotmax-data")
    nitro.configure(id=DATA_VOLUME, label="spotmax-data")

    assert nitro.run().returncode == 0
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1p1"]


def test_partitioned_volume_without_label_is_refused(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME)
    nitro.partition("nvme1n1", "nvme1n1p1", fs="ext4")
    nitro.configure(id=DATA_VOLUME)

    assert_error(nitro.run(), 1, "holds partitions (nvme1n1p1", "DATA_VOLUME_LABEL (data_volume_label)")
    assert nitro.mounted_at(nitro.mount_point) == []


# --- waiting -------------------------------------------------------------------------------------


def test_device_appearing_within_the_bound_is_mounted(nitro: Instance) -> None:
    nitro.configure(id=DATA_VOLUME, wait_seconds=20)

    with subprocess.Popen(nitro.command(), env=nitro.env(), stderr=subprocess.PIPE, text=True) as proc:
        time.sleep(1)
        assert proc.poll() is None  # still waiting
        nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")  # the attachment completes
        stderr = proc.communicate(timeout=RUN_TIMEOUT)[1]

    assert proc.returncode == 0, stderr
    assert "waiting up to 20 s" in stderr
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1"]


def test_device_never_appearing_fails_after_the_bound(nitro: Instance) -> None:
    nitro.configure(id=DATA_VOLUME, wait_seconds=2)

    started = time.monotonic()
    result = nitro.run()
    elapsed = time.monotonic() - started

    assert_error(result, 1, "not found after 2 s", "is the volume attached to this instance?")
    assert 2 <= elapsed < 10  # the whole bound, then an end
    assert nitro.mounted_at(nitro.mount_point) == []


# --- idempotence and what is already mounted -------------------------------------------------------


def test_already_mounted_at_the_mount_point_is_a_no_op(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME)
    assert nitro.run().returncode == 0
    table = nitro.mountinfo.read_text()

    result = nitro.run()

    assert result.returncode == 0, result.stderr
    assert "already mounted" in result.stderr
    assert nitro.mountinfo.read_text() == table
    assert nitro.calls().count("mount ") == 1


def test_volume_mounted_elsewhere_is_an_error(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.mount("nvme1n1", "/srv/old")
    nitro.configure(id=DATA_VOLUME)

    assert_error(nitro.run(), 1, "is already mounted at /srv/old")
    assert nitro.mounted_at(nitro.mount_point) == []


def test_something_else_at_the_mount_point_is_an_error(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", OTHER_VOLUME, fs="xfs")
    nitro.nvme("nvme2n1", DATA_VOLUME, fs="xfs")
    nitro.mount("nvme1n1", nitro.mount_point)
    nitro.configure(id=DATA_VOLUME)

    assert_error(nitro.run(), 1, f"{nitro.mount_point} already has /dev/nvme1n1", "refusing to mount")
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1"]  # never unmounted


# --- the root disk -------------------------------------------------------------------------------


def test_root_volume_id_is_refused(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=ROOT_VOLUME)

    assert_error(nitro.run(), 1, "the disk holding the root filesystem")
    assert nitro.mounted_at(nitro.mount_point) == []


def test_xen_root_disk_by_device_name_is_refused(xen: Instance) -> None:
    xen.xen("xvdf", fs="ext4")
    xen.configure(device="/dev/xvda")

    assert_error(xen.run(), 1, "/dev/xvda is on xvda, the disk holding the root filesystem")
    assert xen.mounted_at(xen.mount_point) == []


def test_label_of_the_root_partition_is_refused(xen: Instance) -> None:
    xen.configure(label="cloudimg-rootfs")

    assert_error(xen.run(), 1, "/dev/xvda1 is on xvda, the disk holding the root filesystem")


def test_root_on_lvm_protects_the_disk_underneath(tmp_path: Path) -> None:
    inst = Instance(tmp_path)
    inst.nvme("nvme0n1", ROOT_VOLUME)
    inst.partition("nvme0n1", "nvme0n1p2")
    inst.xen("dm-0", fs="xfs", label="root")  # a block device without serial, like a device-mapper target
    (tmp_path / "sys" / "devices" / "dm-0" / "slaves").mkdir()
    (tmp_path / "sys" / "devices" / "dm-0" / "slaves" / "nvme0n1p2").symlink_to("../../nvme0n1/nvme0n1p2")
    inst.mount("dm-0", "/")
    inst.configure(id=ROOT_VOLUME)

    assert_error(inst.run(), 1, "is on nvme0n1, the disk holding the root filesystem")


# --- filesystems ---------------------------------------------------------------------------------


def test_blank_volume_is_not_formatted_by_default(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME)
    nitro.configure(id=DATA_VOLUME, fs_type="xfs")

    assert_error(nitro.run(), 1, "has no filesystem", "DATA_VOLUME_CREATE_FILESYSTEM (data_volume_create_filesystem)")
    assert "mkfs" not in nitro.calls()
    assert nitro.mounted_at(nitro.mount_point) == []


def test_blank_volume_gets_a_labelled_filesystem_when_asked(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME)
    nitro.configure(id=DATA_VOLUME, label="spotmax-data", fs_type="ext4", create_filesystem=True)

    result = nitro.run()

    assert result.returncode == 0, result.stderr
    assert (nitro.root / "blkid" / "nvme1n1").read_text().splitlines() == ["TYPE=ext4", "LABEL=spotmax-data"]
    assert nitro.mounted_at(nitro.mount_point) == ["nvme1n1"]


def test_volume_with_a_filesystem_is_never_reformatted(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME, fs_type="xfs", create_filesystem=True)

    assert nitro.run().returncode == 0
    assert "mkfs" not in nitro.calls()


def test_other_filesystem_type_is_refused(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="ext4", label="old")
    nitro.configure(id=DATA_VOLUME, fs_type="xfs")

    assert_error(nitro.run(), 1, "holds a ext4 filesystem labelled old, not xfs", "data_volume_fs_type")
    assert nitro.mounted_at(nitro.mount_point) == []


def test_mount_options_are_passed(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=DATA_VOLUME, mount_options="noatime,nodev")

    assert nitro.run().returncode == 0
    assert f"mount -t xfs -o noatime,nodev {nitro.dev}/nvme1n1 {nitro.mount_point}" in nitro.calls()


def test_failing_mount_is_reported(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    (nitro.root / "mount-fails").write_text("")
    nitro.configure(id=DATA_VOLUME)

    assert_error(nitro.run(), 1, "failed: mount: wrong fs type")


def test_mount_that_does_not_show_in_the_table_is_reported(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    (nitro.root / "mount-lies").write_text("")
    nitro.configure(id=DATA_VOLUME)

    assert_error(nitro.run(), 1, "reported success but")


def test_dry_run_changes_nothing(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME)
    nitro.configure(id=DATA_VOLUME, fs_type="xfs", create_filesystem=True)

    result = nitro.run("--dry-run")

    assert result.returncode == 0, result.stderr
    assert "would create xfs on /dev/nvme1n1" in result.stderr
    assert "would mount /dev/nvme1n1" in result.stderr
    assert nitro.calls() == ""
    assert not nitro.mount_point.exists()


def test_journal_gets_syslog_priorities(nitro: Instance) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(id=ROOT_VOLUME)

    result = nitro.run(JOURNAL_STREAM="8:12345")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("<6>looking for the data volume")
    assert lines[-1].startswith("<3>")
    assert "root filesystem" in lines[-1]


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "phrases"),
    [
        ({}, ["no data volume identifier is set", "DATA_VOLUME_ID (data_volume_id)"]),
        ({"id": "vol-xyz"}, ["DATA_VOLUME_ID (data_volume_id): 'vol-xyz' is not allowed"]),
        ({"device": "/dev/nvme1n1"}, ["DATA_VOLUME_DEVICE (data_volume_device)", "NVMe names change"]),
        ({"device": "sdf"}, ["DATA_VOLUME_DEVICE (data_volume_device): 'sdf' is not allowed"]),
        ({"id": DATA_VOLUME, "mount_point": "data"}, ["DATA_VOLUME_MOUNT_POINT (data_volume_mount_point): 'data'"]),
        ({"id": DATA_VOLUME, "mount_point": "/"}, ["DATA_VOLUME_MOUNT_POINT (data_volume_mount_point): '/'"]),
        ({"id": DATA_VOLUME, "mount_point": ""}, ["DATA_VOLUME_MOUNT_POINT (data_volume_mount_point): ''"]),
        ({"id": DATA_VOLUME, "wait_seconds": "forever"}, ["DATA_VOLUME_WAIT_SECONDS (data_volume_wait_seconds)"]),
        ({"id": DATA_VOLUME, "create_filesystem": "maybe"}, ["DATA_VOLUME_CREATE_FILESYSTEM"]),
        ({"id": DATA_VOLUME, "create_filesystem": "true"}, ["DATA_VOLUME_FS_TYPE (data_volume_fs_type): 'auto'"]),
        ({"label": "data", "fs_type": "xfs", "create_filesystem": "true"}, ["needs DATA_VOLUME_ID (data_volume_id)"]),
        ({"uuid": "not a uuid"}, ["DATA_VOLUME_UUID (data_volume_uuid)"]),
        ({"id": DATA_VOLUME, "mount_options": "a b"}, ["DATA_VOLUME_MOUNT_OPTIONS (data_volume_mount_options)"]),
        ({"id": DATA_VOLUME, "volume": "x"}, ["unknown setting DATA_VOLUME_VOLUME"]),
    ],
)
def test_bad_configuration_names_the_setting(nitro: Instance, settings: dict[str, str], phrases: list[str]) -> None:
    nitro.nvme("nvme1n1", DATA_VOLUME, fs="xfs")
    nitro.configure(**settings)

    result = nitro.run()

    assert_error(result, 2, "configuration error", *phrases)
    assert nitro.mounted_at(nitro.mount_point) == []


def test_missing_configuration_file(nitro: Instance) -> None:
    assert_error(nitro.run(), 2, f"cannot read the configuration file {nitro.config}")


def test_malformed_configuration_line(nitro: Instance) -> None:
    nitro.config.write_text("DATA_VOLUME_ID\n")

    assert_error(nitro.run(), 2, "line 1: expected KEY=value")
