// The map of one located photo, drawn with Leaflet: shared by `vpr serve`'s page
// (vpr/serve/static/page.js, which loads this file from /static/map/) and the file written by
// `vpr locate --map` (vpr/locate/render.py, which inlines it).
//
// A result is what `vpr locate --json` and POST /locate say of one photo: latitude,
// longitude, radius_m, confidence and matches (rank, latitude, longitude, similarity,
// in_cluster, distance_to_prediction_m: geodesic metres, from vpr.locate.geodesy).
//
// The view fits the prediction, its uncertainty radius and the matches of the winning
// cluster, not every match: matches elsewhere (often hundreds of km away) are listed below
// the map with their distance, each one click from being shown. OpenStreetMap tiles are the
// background when they load; when none does (offline, blocked), the map says so and keeps
// the points, the radius and the scale on a plain background.
"use strict";
window.VprMap = (function () {
  const PREDICTION_COLOUR = "#2b6cb0";
  const ATTRIBUTION =
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>';
  const FIT = {padding: [28, 28], maxZoom: 19, animate: false};
  // A match elsewhere is shown at this zoom (a street or two around it).
  const FOCUS_ZOOM = 17;

  function fmt(value, digits) {
    return value === null || value === undefined ? "?" : Number(value).toFixed(digits);
  }

  // As vpr.locate.geodesy.format_distance: metres below 1 km, km with 2 decimals above.
  function formatDistance(metres) {
    if (metres === null || metres === undefined) return "?";
    if (metres >= 1000) {
      return (metres / 1000).toLocaleString("en-US", {minimumFractionDigits: 2,
                                                      maximumFractionDigits: 2}) + " km";
    }
    return metres.toFixed(0) + " m";
  }

  function matchTip(match) {
    return "#" + match.rank + ", similarity " + fmt(match.similarity, 3) + ", " +
      formatDistance(match.distance_to_prediction_m) + " from the prediction";
  }

  function button(text, attributes, onClick) {
    const node = document.createElement("button");
    node.type = "button";
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    node.textContent = text;
    node.addEventListener("click", onClick);
    return node;
  }

  // options: tileUrl (OpenStreetMap's template), note and elsewhere (elements below the
  // map for the offline note and the list of far matches), icon (Leaflet icon options of
  // the prediction's pin, e.g. data: URLs; default: Leaflet's own, found through its CSS),
  // noTileMs (how long to wait for a first tile before calling the map offline).
  function create(container, options) {
    const view = {map: null, layers: null, tiles: null, tilesLoaded: false, offline: false,
                  clusterBounds: null, markers: {}};
    const map = L.map(container, {maxZoom: 19, worldCopyJump: true});
    container.classList.add("vpr-map");
    options.note.classList.add("vpr-map-note");
    options.elsewhere.classList.add("vpr-elsewhere");
    L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
    view.layers = L.layerGroup().addTo(map);
    view.map = map;

    view.goOffline = function (why) {
      if (view.offline) return;
      view.offline = true;
      if (view.tiles) {
        map.removeLayer(view.tiles);
        view.tiles = null;
      }
      container.classList.add("offline");
      options.note.textContent = "No map background (" + why + "): the points, the " +
        "uncertainty radius and the scale are drawn on a plain background.";
      document.body.dataset.map = "offline";
    };

    if (navigator.onLine === false) {
      view.goOffline("the browser is offline");
    } else {
      const tiles = L.tileLayer(options.tileUrl, {maxZoom: 19, attribution: ATTRIBUTION});
      tiles.on("tileload", () => {
        view.tilesLoaded = true;
        document.body.dataset.map = "tiles";
      });
      // One failed tile among loaded ones is a gap; failing before any loads is offline.
      tiles.on("tileerror", () => {
        if (!view.tilesLoaded) view.goOffline("map tiles unreachable");
      });
      tiles.addTo(map);
      view.tiles = tiles;
      setTimeout(() => { if (!view.tilesLoaded) view.goOffline("no map tile arrived"); },
                 options.noTileMs || 8000);
    }

    view.fitCluster = function () {
      if (view.clusterBounds) map.fitBounds(view.clusterBounds, FIT);
    };

    // Shows match `rank` of the result on the map, its tooltip open.
    view.focus = function (rank) {
      const marker = view.markers[rank];
      if (!marker) return;
      map.setView(marker.getLatLng(), Math.max(FOCUS_ZOOM, map.getZoom()), {animate: false});
      marker.openTooltip();
    };

    view.show = function (result) {
      map.invalidateSize();
      view.layers.clearLayers();
      view.markers = {};
      const elsewhere = options.elsewhere;
      elsewhere.replaceChildren();
      if (result.latitude === null || result.longitude === null) {
        map.setView([0, 0], 1);
        view.clusterBounds = null;
        elsewhere.textContent = "No location to draw.";
        return;
      }
      const centre = L.latLng(result.latitude, result.longitude);
      L.circle(centre, {radius: result.radius_m, color: PREDICTION_COLOUR, weight: 2,
                        dashArray: "5 4", fillOpacity: 0.08, className: "cluster-radius"})
        .bindTooltip(result.radius_m + " m around the prediction").addTo(view.layers);
      // The view: the prediction, its radius and the matches of its cluster.
      const bounds = centre.toBounds(2 * result.radius_m);
      const far = [];
      for (const match of [...result.matches].reverse()) {  // the best match drawn on top
        if (match.latitude === null || match.longitude === null) continue;
        const at = L.latLng(match.latitude, match.longitude);
        const kind = match.in_cluster ? " in-cluster" : "";
        const icon = L.divIcon({className: "match-marker" + kind, iconSize: [20, 20],
          html: '<span class="rank-dot' + kind + '">' + Number(match.rank) + "</span>"});
        view.markers[match.rank] = L.marker(at, {icon: icon, zIndexOffset: -Number(match.rank)})
          .bindTooltip(matchTip(match)).addTo(view.layers);
        if (match.in_cluster) bounds.extend(at);
        else far.unshift(match);
      }
      const pin = options.icon
        ? L.icon(Object.assign({}, L.Icon.Default.prototype.options, options.icon))
        : new L.Icon.Default();
      L.marker(centre, {icon: pin, alt: "prediction", title: "prediction", zIndexOffset: 1000})
        .bindTooltip("prediction, confidence " + fmt(result.confidence, 2))
        .addTo(view.layers);
      view.clusterBounds = bounds;
      map.fitBounds(bounds, FIT);
      if (far.length) {
        const label = document.createElement("span");
        label.textContent = "Matches elsewhere: ";
        elsewhere.appendChild(label);
        for (const match of far) {
          const item = button("#" + match.rank + ": " +
                                formatDistance(match.distance_to_prediction_m),
                              {"data-rank": match.rank, title: "show it on the map"},
                              () => view.focus(match.rank));
          elsewhere.appendChild(item);
        }
        elsewhere.appendChild(button("back to the prediction", {id: "back-to-prediction"},
                                     view.fitCluster));
      }
    };
    return view;
  }

  return {create: create, formatDistance: formatDistance, fmt: fmt, matchTip: matchTip};
})();
