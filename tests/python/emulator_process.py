"""The emulator binary started for a boto3 test, and boto3's client arguments for it.

Both boto3 tests start it the same way: a free port, a frozen clock from 2026-01-15, a hub key
(HUBKEY, account 111111111111) that may assume the member role audit-reader of 222222222222.
"""
import contextlib
import subprocess

from botocore.config import Config

MEMBER_ROLE = "arn:aws:iam::222222222222:role/audit-reader"


@contextlib.contextmanager
def running(binary, devices, noncompliant_share):
    """Yields (url, client keyword arguments) while the emulator runs; kills it after."""
    proc = subprocess.Popen(
        [binary, "--port", "0", "--frozen-clock", "--start-time", "2026-01-15T00:00:00Z",
         "--fleet-devices", str(devices), "--noncompliant-share", str(noncompliant_share),
         "--access-key", "HUBKEY=111111111111", "--role", f"{MEMBER_ROLE}=111111111111"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        yield url, dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
    finally:
        proc.kill()
