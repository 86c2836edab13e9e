// The start every stand-alone page (the wall, the watchlists, the review queue) shares: the
// language pickers, the session, the site's time zone and language, the page translated.
import { api, ApiError } from "./api.js";
import { preferredLanguage, setLanguage, setTimeZone, translateDom } from "./i18n.js";

// Resolves to { me, config }, or to null when nobody is signed in: then the page's sign-in
// notice (`signin`) is shown and its body (`main`, if given) hidden.
export async function startPage({ signin, main = null }) {
  for (const sel of document.querySelectorAll(".lang-select")) sel.addEventListener("change", (ev) => setLanguage(ev.target.value));
  let me;
  try {
    me = await api("/api/v1/auth/me");
  } catch (err) {
    await setLanguage(preferredLanguage("en"));
    translateDom(document);
    document.querySelector(signin).hidden = false;
    if (main) document.querySelector(main).hidden = true;
    if (!(err instanceof ApiError && err.status === 401)) console.error(err);
    return null;
  }
  const config = await api("/api/v1/ui/config");
  setTimeZone(config.timezone || "UTC");
  await setLanguage(preferredLanguage(config.language));
  translateDom(document);
  return { me, config };
}
