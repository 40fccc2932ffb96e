"""Test accounts from a file: parsing with precise errors, partitions, leases, TOTP codes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from scenarios.accounts import Account, AccountPool, AccountsFileError, read_accounts, totp_for

# RFC 6238, appendix B: the seeds, and the 8-digit codes at each time for SHA-1/256/512.
RFC6238_SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_CODES = {
    59: ("94287082", "46119246", "90693936"),
    1111111109: ("07081804", "68084774", "25091201"),
    1111111111: ("14050471", "67062674", "99943326"),
    1234567890: ("89005924", "91819424", "93441116"),
    2000000000: ("69279037", "90698825", "38618901"),
    20000000000: ("65353130", "77737706", "47863826"),
}


def _b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=")


@pytest.mark.parametrize("at", sorted(RFC6238_CODES))
def test_totp_codes_are_rfc_6238s(at: int) -> None:
    for (algorithm, seed), want in zip(RFC6238_SEEDS.items(), RFC6238_CODES[at], strict=True):
        uri = f"otpauth://totp/portal:t?secret={_b32(seed)}&digits=8&algorithm={algorithm}"
        assert totp_for(uri).at(at) == want, algorithm


def test_a_bare_secret_is_six_digits_every_30_s_with_sha1() -> None:
    assert totp_for("JBSWY3DPEHPK3PXP").at(0) == totp_for("jbsw y3dp ehpk 3pxp").at(0)  # 80 bits
    account = Account(
        "t", "pw", _b32(RFC6238_SEEDS["SHA1"]), 2, totp_for(_b32(RFC6238_SEEDS["SHA1"]))
    )
    # the RFC's SHA-1 code at 59 s is 94287082; six digits keep its last six
    assert account.second_factor("000000", now_s=59) == "287082"
    assert account.second_factor("000000", now_s=60) != "287082"  # the next 30 s window
    assert Account("u", "pw").second_factor("123456") == "123456"  # no secret: the fixed code


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_is_read_in_order_with_optional_secrets(tmp_path: Path) -> None:
    secret = _b32(RFC6238_SEEDS["SHA1"])
    path = write(
        tmp_path,
        "\ufefflogin,password,totp_secret\n"
        f'alice,pw 1,{secret}\n\n"bob, jr","p,w",\ncarol@x.example,pw3,\n',
    )
    accounts = read_accounts(path)
    assert [(a.login, a.password, a.has_mfa, a.line) for a in accounts] == [
        ("alice", "pw 1", True, 2),
        ("bob, jr", "p,w", None, 4),
        ("carol@x.example", "pw3", None, 5),
    ]
    assert accounts[0].second_factor("000000", now_s=59) == "287082"
    assert [a.email for a in accounts[1:]] == ["bob, jr@mail.example", "carol@x.example"]
    # the column order is the header's, and totp_secret may be left out
    (only,) = read_accounts(write(tmp_path, "password,login\nsecret,dave\n"))
    assert (only.login, only.password, only.totp_secret) == ("dave", "secret", None)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("", 1, 0, "empty: expected the header login,password,totp_secret"),
        ("login,pass\n", 1, 2, "unknown column 'pass'"),
        ("login,password,login\n", 1, 3, "column 'login' appears twice"),
        ("login,totp_secret\n", 1, 0, "lacks the column 'password'"),
        ("login,password\n", 2, 0, "no account after the header"),
        ("login,password\na,1\nb\n", 3, 0, "1 fields, the header has 2"),
        ("login,password\na,1\nb, \n", 3, 2, "password is empty"),
        ("login,password\na,1\nb,2\na,3\n", 4, 1, "login 'a' is already on line 2"),
        ("password,login,totp_secret\n1,a,not base32!\n", 2, 3, "totp_secret is not a base32"),
        (
            "login,password,totp_secret\na,1,otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP\n",
            2,
            3,
            "not otpauth://totp",
        ),
    ],
)
def test_a_malformed_file_names_its_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AccountsFileError, match=message) as caught:
        read_accounts(path)
    error = caught.value
    assert (error.path, error.line, error.column) == (str(path), line, column)
    where = f"{path}, line {line}" + (f", column {column}" if column else "")
    assert str(error).startswith(f"{where}: ")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AccountsFileError, match=r"nothing\.csv.*cannot read"):
        read_accounts(tmp_path / "nothing.csv")


def test_workers_take_disjoint_shares_and_lease_each_account_to_one_user() -> None:
    accounts = tuple(Account(f"t{i}", "pw") for i in range(7))
    pools = [AccountPool(accounts, worker_index=w, partitions=3, source="a.csv") for w in range(3)]
    shares = [[a.login for a in accounts[w::3]] for w in range(3)]
    held = [[p.acquire() for _ in range(p.capacity)] for p in pools]
    assert [[a.login for a in h if a] for h in held] == shares
    assert all(p.acquire() is None for p in pools)  # every account held: none handed twice
    first = held[0][0]
    assert first is not None
    pools[0].release(first)
    pools[0].release(first)  # a second release changes nothing
    assert pools[0].acquire() == first and pools[0].acquire() is None


def test_too_few_accounts_for_the_workers_are_refused() -> None:
    accounts = (Account("a", "1"), Account("b", "2"))
    with pytest.raises(ValueError, match=r"a.csv: 2 account\(s\) for 3 workers leave none"):
        AccountPool(accounts, worker_index=2, partitions=3, source="a.csv")
    with pytest.raises(ValueError, match="outside the 2 account partition"):
        AccountPool(accounts, worker_index=2, partitions=2, source="a.csv")
