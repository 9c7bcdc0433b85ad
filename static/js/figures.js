/* Draw the figures a page carries (history, event windows): <div data-figure="id"> + JSON script #id. */
(function () {
  "use strict";
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  document.querySelectorAll("[data-figure]").forEach((div) => {
    const source = document.getElementById(div.dataset.figure);
    if (!source) return;
    const figure = JSON.parse(source.textContent);
    Plotly.newPlot(div, figure.data, figure.layout, config).then(() => (div.dataset.drawn = "true"));
  });
})();
