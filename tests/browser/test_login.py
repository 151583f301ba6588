"""A staff member mistypes the password, is told so and stays out; the right
password then lets them in."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN

pytestmark = pytest.mark.browser


def test_wrong_password_is_refused_then_the_right_one_logs_in(page):
    username, password = ADMIN
    page.goto("/")
    expect(page, "an anonymous visitor is sent to the login page").to_have_url(
        re.compile(r"/login/\?next=/$")
    )

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password + "-typo")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("alert")).to_contain_text("password")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.goto("/pools/")
    expect(page, "a failed login must not open a session").to_have_url(re.compile(r"/login/"))

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()

    expect(page, "the login returns to the page first asked for").to_have_url(
        re.compile(r"/pools/$")
    )
    expect(page.get_by_role("heading", name="Pools", exact=False).first).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_text(f"{username} · administrator")).to_be_visible()
