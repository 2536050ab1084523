// The page of `vpr serve` (vpr/serve/page.py): photos in, locations, map and evidence out.
//
// Photos go to POST /locate/batch in groups (bounded by the service's --max_batch_files and
// --max_batch_mb); each answer row is what POST /locate says of that photo alone, or its
// error. The table, the CSV and the GeoJSON are all made from those rows, with the same
// columns (CSV_COLUMNS), so a download says exactly what the API said.
"use strict";
(function () {
  const SETTINGS = JSON.parse(document.getElementById("settings").textContent);
  // At most this many photos per request, so that the progress bar moves on big drops.
  const PAGE_BATCH = Math.min(SETTINGS.maxBatchFiles, 8);
  const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|gif|tiff?)$/i;
  const CSV_COLUMNS = ["photo", "latitude", "longitude", "confidence", "cluster_size",
    "top_match", "top_match_similarity", "top_match_latitude", "top_match_longitude",
    "distance_to_top_match_m", "error_status", "error"];
  const LINE_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628"];

  // view: the map of vpr/assets/map/locationmap.js (made at the first result); map: its
  // Leaflet map.
  const state = {rows: [], selected: -1, view: null, map: null, urls: []};
  const $ = id => document.getElementById(id);
  const statusLine = $("status");

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.className = isError ? "error" : "";
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "?" : Number(value).toFixed(digits);
  }

  const formatDistance = VprMap.formatDistance;

  function element(name, attributes, text) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function baseName(path) {
    return path ? String(path).split(/[\\/]/).pop() : "";
  }

  // ---- one API row -> the columns of the table, the CSV and the GeoJSON

  function summary(row) {
    const out = Object.fromEntries(CSV_COLUMNS.map(column => [column, null]));
    out.photo = row.photo;
    if (row.error) {
      out.error_status = row.error.status;
      out.error = row.error.detail;
      return out;
    }
    out.latitude = row.latitude;
    out.longitude = row.longitude;
    out.confidence = row.confidence;
    out.cluster_size = row.cluster_size;
    const top = row.matches && row.matches[0];
    if (top) {
      out.top_match = top.path;
      out.top_match_similarity = top.similarity;
      out.top_match_latitude = top.latitude;
      out.top_match_longitude = top.longitude;
      out.distance_to_top_match_m = top.distance_to_prediction_m;
    }
    return out;
  }

  function csvCell(value) {
    if (value === null || value === undefined) return "";
    let text = String(value);
    // A text (a file name) that a spreadsheet would run as a formula is kept as text.
    // Not a leading "@": every name of the @-format (docs/DATA.md) starts with one.
    if (typeof value === "string" && /^[=+\-\t\r]/.test(text)) text = "'" + text;
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function csvText() {
    const lines = [CSV_COLUMNS.join(",")];
    for (const row of state.rows) {
      const values = summary(row.answer);
      lines.push(CSV_COLUMNS.map(column => csvCell(values[column])).join(","));
    }
    return lines.join("\r\n") + "\r\n";
  }

  function geojsonText() {
    const features = state.rows.map(row => {
      const properties = summary(row.answer);
      const located = properties.latitude !== null && properties.longitude !== null;
      return {type: "Feature", properties: properties,
              geometry: located ? {type: "Point",
                                   coordinates: [properties.longitude, properties.latitude]}
                                : null};
    });
    return JSON.stringify({type: "FeatureCollection", features: features}, null, 1);
  }

  function updateDownloads() {
    for (const url of state.urls) URL.revokeObjectURL(url);
    state.urls = [];
    for (const [id, text, type] of [["download-csv", csvText(), "text/csv"],
                                    ["download-geojson", geojsonText(),
                                     "application/geo+json"]]) {
      const url = URL.createObjectURL(new Blob([text], {type: type}));
      state.urls.push(url);
      $(id).href = url;
    }
  }

  // ---- sending photos

  function groups(files) {
    const out = [];
    let current = [], bytes = 0;
    for (const file of files) {
      if (current.length && (current.length >= PAGE_BATCH ||
                             bytes + file.size > SETTINGS.maxBatchBytes)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(file);
      bytes += file.size;
    }
    if (current.length) out.push(current);
    return out;
  }

  async function sendGroup(files) {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    form.append("top_k", $("top_k").value);
    let response, payload;
    try {
      response = await fetch("/locate/batch", {method: "POST", body: form});
      payload = await response.json();
    } catch (error) {
      return files.map(file => ({photo: file.name,
        error: {status: 0, detail: "the service did not answer: " + error}}));
    }
    if (!response.ok) {  // the whole request was refused: each photo says why
      const detail = typeof payload.detail === "string" ? payload.detail
        : JSON.stringify(payload.detail);
      return files.map(file => ({photo: file.name,
                                 error: {status: response.status, detail: detail}}));
    }
    return payload;
  }

  async function send(files) {
    files = [...files];
    if (files.length === 0) return;
    let skipped = 0;
    if (files.length > 1) {  // a folder: its images only (a single pick is sent as is)
      const images = files.filter(f => f.type.startsWith("image/") || IMAGE_NAME.test(f.name));
      skipped = files.length - images.length;
      files = images;
    }
    document.body.dataset.state = "busy";
    const progress = $("progress");
    progress.hidden = false;
    progress.max = files.length;
    progress.value = 0;
    const rows = [];
    const sendable = [];
    for (const file of files) {
      if (file.size > SETTINGS.maxUploadBytes) {
        rows[files.indexOf(file)] = {file: file, answer: {photo: file.name, error: {
          status: 413, detail: "larger than the limit of " +
            (SETTINGS.maxUploadBytes / 1048576) + " MB"}}};
      } else {
        sendable.push(file);
      }
    }
    let done = files.length - sendable.length;
    progress.value = done;
    for (const group of groups(sendable)) {
      setStatus("Locating " + (done + 1) + "-" + (done + group.length) + " of " +
                files.length + " photos...", false);
      const answers = await sendGroup(group);
      group.forEach((file, number) => {
        rows[files.indexOf(file)] = {file: file, answer: answers[number]};
      });
      done += group.length;
      progress.value = done;
    }
    state.rows = rows;
    progress.hidden = true;
    showTable();
    updateDownloads();
    const located = rows.filter(row => !row.answer.error).length;
    if (rows.length === 0) {
      setStatus("No image among the " + skipped + " files.", true);
      document.body.dataset.state = "error";
      return;
    }
    const first = rows.findIndex(row => !row.answer.error);
    showDetail(first >= 0 ? first : 0);
    if (rows.length === 1) {
      const answer = rows[0].answer;
      if (answer.error) {
        setStatus("Refused (" + answer.error.status + "): " + answer.error.detail, true);
      } else {
        setStatus(answer.photo + ": located with " + answer.matches.length + " matches.",
                  false);
      }
    } else {
      setStatus(rows.length + " photos: " + located + " located, " +
                (rows.length - located) + " refused" +
                (skipped ? ", " + skipped + (skipped === 1 ? " other file" : " other files") +
                 " skipped" : "") +
                ". Click a row to see its map and matches.", located < rows.length);
    }
    document.body.dataset.state = located > 0 ? "done" : "error";
  }

  // ---- the table

  function showTable() {
    const body = $("results").querySelector("tbody");
    body.replaceChildren();
    state.rows.forEach((row, number) => {
      const values = summary(row.answer);
      const tr = element("tr", {"data-row": number});
      if (row.answer.error) tr.className = "failed";
      const cells = row.answer.error
        ? [number + 1, values.photo, "refused (" + values.error_status + "): " + values.error]
        : [number + 1, values.photo, fmt(values.latitude, 6), fmt(values.longitude, 6),
           fmt(values.confidence, 2), baseName(values.top_match),
           formatDistance(values.distance_to_top_match_m)];
      cells.forEach((text, column) => {
        const td = element("td", {}, String(text));
        if (column === 1 || (column === 5 && !row.answer.error)) {  // long file names
          td.className = "name";
          td.title = String(text);
        }
        if (row.answer.error && column === 2) td.colSpan = 5;
        tr.appendChild(td);
      });
      tr.tabIndex = 0;  // reachable from the keyboard: Enter opens it
      const open = () => {
        showDetail(number);
        $("result").scrollIntoView({behavior: "smooth"});
      };
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", event => { if (event.key === "Enter") open(); });
      body.appendChild(tr);
    });
    $("batch").hidden = false;
  }

  // ---- one photo: prediction, map, evidence

  function showDetail(number) {
    state.selected = number;
    for (const tr of document.querySelectorAll("#results tbody tr")) {
      tr.classList.toggle("selected", Number(tr.dataset.row) === number);
    }
    const row = state.rows[number];
    if (!row || row.answer.error) {
      $("result").hidden = true;
      return;
    }
    const preview = $("preview");
    if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(row.file);
    $("result").hidden = false;
    showPrediction(row.answer);
    drawMap(row.answer);
    showMatches(row.answer, preview.src);
  }

  function showPrediction(result) {
    const box = $("prediction");
    box.replaceChildren();
    const line = text => box.appendChild(element("div", {}, text));
    line(result.photo).className = "name";
    if (result.latitude === null && result.utm_east === null) {
      line("No location: " + (result.reason || "no match found") + ".");
      return;
    }
    line("Location: " + fmt(result.latitude, 6) + ", " + fmt(result.longitude, 6));
    line("UTM " + (result.utm_zone_number || "") + result.utm_zone_letter + " " +
         fmt(result.utm_east, 1) + " E " + fmt(result.utm_north, 1) + " N");
    line("Confidence: " + fmt(result.confidence, 2)).className = "confidence";
    line(result.cluster_size + " of " + result.matches.length + " matches within " +
         result.radius_m + " m");
    if (result.latitude !== null) {
      // A link only: nothing is fetched from outside unless the user follows it.
      const link = element("a", {target: "_blank", rel: "noopener noreferrer",
        href: "https://www.openstreetmap.org/?mlat=" + result.latitude + "&mlon=" +
              result.longitude + "#map=18/" + result.latitude + "/" + result.longitude},
        "open in OpenStreetMap");
      box.appendChild(link);
    }
  }

  // The map itself is vpr/assets/map/locationmap.js (shared with `vpr locate --map`).
  function drawMap(result) {
    if (!state.view) {
      state.view = VprMap.create($("map"), {tileUrl: SETTINGS.tileUrl, note: $("map-note"),
                                            elsewhere: $("elsewhere")});
      state.map = state.view.map;
    }
    state.view.show(result);
  }

  function showMatches(result, photoUrl) {
    const grid = $("matches");
    grid.replaceChildren();
    for (const match of result.matches) {
      const figure = element("figure", {"data-rank": match.rank});
      figure.className = "match" + (match.in_cluster ? " in-cluster" : "");
      const pair = element("div", {"class": "pair"});
      const photo = element("img", {alt: "the photo", src: photoUrl});
      const image = element("img", {alt: "match " + match.rank, loading: "lazy"});
      if (match.id !== null && match.id !== undefined) image.src = "/thumbnail/" + match.id;
      const canvas = element("canvas", {});
      pair.append(photo, image, canvas);
      const caption = element("figcaption");
      const lines = ["#" + match.rank + ", similarity " + fmt(match.similarity, 3) +
                       (match.inliers !== undefined && match.inliers !== null
                         ? ", " + match.inliers + " inliers" : ""),
                     formatDistance(match.distance_to_prediction_m) + " from the prediction",
                     fmt(match.latitude, 5) + ", " + fmt(match.longitude, 5)];
      for (const text of lines) caption.appendChild(element("div", {}, text));
      figure.append(pair, caption);
      const draw = () => drawPairs(canvas, photo, image, match.keypoint_pairs, "cover");
      photo.addEventListener("load", draw);
      image.addEventListener("load", draw);
      figure.addEventListener("click", () => openEvidence(result, match, photoUrl));
      grid.appendChild(figure);
    }
  }

  // Where an image's pixels are drawn inside its box, under CSS object-fit cover/contain.
  function contentBox(img, fit) {
    const width = img.clientWidth, height = img.clientHeight;
    const natural = [img.naturalWidth || width, img.naturalHeight || height];
    const scale = (fit === "cover" ? Math.max : Math.min)(width / natural[0],
                                                          height / natural[1]);
    const shown = [natural[0] * scale, natural[1] * scale];
    return {x: img.offsetLeft + (width - shown[0]) / 2, y: img.offsetTop + (height - shown[1]) / 2,
            width: shown[0], height: shown[1], clip: [img.offsetLeft, img.offsetTop,
                                                     width, height]};
  }

  // Re-ranking's matched keypoints, when the answer has them: ``keypoint_pairs`` of a match
  // is a list of [x_photo, y_photo, x_match, y_match], each a fraction (0-1) of its image's
  // width or height. Each pair is one line from the photo (left) to the match (right).
  function drawPairs(canvas, left, right, pairs, fit) {
    const box = canvas.parentElement;
    canvas.width = box.clientWidth;
    canvas.height = box.clientHeight;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    canvas.dataset.lines = "0";
    if (!Array.isArray(pairs) || pairs.length === 0) return 0;
    const a = contentBox(left, fit), b = contentBox(right, fit);
    context.lineWidth = 1.5;
    let drawn = 0;
    pairs.forEach((pair, number) => {
      if (!Array.isArray(pair) || pair.length !== 4) return;
      const from = [a.x + pair[0] * a.width, a.y + pair[1] * a.height];
      const to = [b.x + pair[2] * b.width, b.y + pair[3] * b.height];
      context.strokeStyle = LINE_COLOURS[number % LINE_COLOURS.length];
      context.beginPath();
      context.moveTo(from[0], from[1]);
      context.lineTo(to[0], to[1]);
      context.stroke();
      for (const end of [from, to]) {
        context.beginPath();
        context.arc(end[0], end[1], 2.5, 0, 2 * Math.PI);
        context.stroke();
      }
      drawn += 1;
    });
    canvas.dataset.lines = String(drawn);
    return drawn;
  }

  function openEvidence(result, match, photoUrl) {
    const dialog = $("evidence");
    $("evidence-caption").textContent = result.photo + " (left) and match #" + match.rank +
      " (right): similarity " + fmt(match.similarity, 3) + ", " +
      formatDistance(match.distance_to_prediction_m) + " from the prediction" +
      (match.in_cluster ? ", in the winning cluster" : ", outside the winning cluster");
    const photo = $("evidence-photo"), image = $("evidence-match");
    const canvas = $("evidence-lines");
    const draw = () => drawPairs(canvas, photo, image, match.keypoint_pairs, "contain");
    photo.onload = draw;
    image.onload = draw;
    photo.src = photoUrl;
    image.src = match.id !== null && match.id !== undefined ? "/image/" + match.id : "";
    dialog.showModal();
    draw();
  }

  $("evidence-close").addEventListener("click", () => $("evidence").close());
  $("evidence").addEventListener("click", event => {  // a click beside the dialog closes it
    const box = event.currentTarget.getBoundingClientRect();
    if (event.clientX < box.left || event.clientX > box.right || event.clientY < box.top ||
        event.clientY > box.bottom) event.currentTarget.close();
  });

  // ---- input: pick photos, pick a folder, drop either

  async function droppedFiles(transfer) {
    // Entries must be taken now, while the drop event lasts; reading them may come later.
    const entries = [...(transfer.items || [])].map(
      item => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
    const plain = [...transfer.files];
    if (entries.length === 0 || entries.some(entry => !entry)) return plain;
    const files = [];
    async function walk(entry) {
      if (entry.isFile) {
        files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((resolve, reject) => reader.readEntries(resolve,
                                                                                 reject));
          if (batch.length === 0) break;
          for (const child of batch) await walk(child);
        }
      }
    }
    for (const entry of entries) await walk(entry);
    return files;
  }

  const drop = $("drop");
  for (const input of [$("photo"), $("folder")]) {
    input.addEventListener("change", () => {
      const files = [...input.files];
      input.value = "";  // the next pick replaces this one (and may pick the same again)
      send(files);
    });
  }
  drop.addEventListener("dragover", event => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", event => {
    event.preventDefault();
    drop.classList.remove("over");
    droppedFiles(event.dataTransfer).then(send);
  });

  // For tests and scripts: the map, the rows and the column summary.
  window.vpr = {state: state, summary: summary, csvColumns: CSV_COLUMNS, showDetail: showDetail,
                drawPairs: drawPairs, csvText: csvText, geojsonText: geojsonText};
  document.body.dataset.state = "ready";
})();
