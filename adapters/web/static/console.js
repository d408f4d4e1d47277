// Live pages: when the server says this page's network changed, fetch the page
// again and swap in its live parts ([data-live] with an id), leaving the
// forms, the scroll and the filters as they are. A page of the past never changes.
(() => {
  const main = document.querySelector("main[data-stream]");
  if (!main) return;
  let opened = false;
  const refresh = async () => {
    const answer = await fetch(location.href, { headers: { accept: "text/html" } });
    if (!answer.ok) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const part of fresh.querySelectorAll("[data-live][id]")) {
      const here = document.getElementById(part.id);
      if (here) here.replaceWith(document.importNode(part, true));
    }
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  };
  const stream = new EventSource(main.dataset.stream);
  stream.addEventListener("change", refresh);
  // After a dropped connection the browser reconnects; what changed meanwhile is fetched once.
  stream.addEventListener("open", () => {
    if (opened) refresh();
    opened = true;
    document.body.dataset.live = "open";
  });
  stream.addEventListener("error", () => { document.body.dataset.live = "reconnecting"; });
})();
