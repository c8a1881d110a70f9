import httpx

from tests.webui.conftest import LoginAs


async def test_login_and_me(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    headers = await login_as("ada")
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["Admin"]
    r = await client.get("/api/v1/users", headers=headers)
    assert r.status_code == 200, r.text
    r = await client.get("/docs")
    assert r.status_code == 200
