// Sign-in: check the token against the API, keep it in sessionStorage, go back to where the user was.
import { $, keepToken, notice } from "./common.js";

/** Where to go after signing in: a path on this site only (no "//host", no scheme). */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return /^\/(?![/\\])/.test(next) ? next : "/";
}

if (new URLSearchParams(location.search).get("why") === "expired") {
  notice("Your token was not accepted (wrong, expired or revoked): sign in again.", "error");
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  const error = $("signin-error");
  error.hidden = true;
  if (!value) return;
  try {
    const answer = await fetch("/api/v1/experiments?page_size=1", {
      headers: { Authorization: `Bearer ${value}` },
      cache: "no-store",
      credentials: "omit",
    });
    if (answer.status === 401) {
      error.textContent = "This token was not accepted.";
      error.hidden = false;
      return;
    }
    if (!answer.ok) throw new Error(`${answer.status} ${answer.statusText}`);
    keepToken(value);
    location.replace(nextPath());
  } catch (err) {
    error.textContent = `Could not reach the service: ${err.message}`;
    error.hidden = false;
  }
});
