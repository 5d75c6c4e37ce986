// Ask before a form marked data-confirm is sent (e.g. removing a destination).
// Without JavaScript the form is sent straight away: the server never depends on this.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
