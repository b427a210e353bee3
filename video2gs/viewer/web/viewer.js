// The page of `video2gs export --web`: plays sequence.json's frames with Spark (vendored, see
// vendor/VENDOR.md). Frames are .splat files already in three.js's +Y-up world (formats/web.py),
// and the camera comes from sequence.json (camera.viewer_camera), so this page holds no convention.
// State for scripts and tests: window.video2gs (ready, sequence, frame, drawn).
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

const MAX_MESHES = 24; // frames kept decoded on the GPU side; older ones are disposed
const PREFETCH = 3; // frames loaded ahead while playing
const DRAWN_AFTER = 2; // rendered frames, once Spark shows only the wanted splats, sorted, before "drawn"

const $ = (id) => document.getElementById(id);
const state = (window.video2gs = { ready: false, sequence: null, frame: 0, drawn: null, loads: 0 });

const meta = await (await fetch("sequence.json")).json();
const names = Object.keys(meta.sequences);
const params = new URLSearchParams(location.search);
document.title = `${meta.title} · video2gs`;

const view = $("view");
const renderer = new THREE.WebGLRenderer({ antialias: false, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
view.appendChild(renderer.domElement);
const scene = new THREE.Scene();
const spark = new SparkRenderer({ renderer });
scene.add(spark);

const cam = meta.camera;
const camera = new THREE.PerspectiveCamera(cam.fovy_deg, 1, cam.near, cam.far);
camera.position.fromArray(cam.position);
camera.up.fromArray(cam.up);
const controls = new OrbitControls(camera, renderer.domElement);
controls.target.fromArray(cam.look_at);
controls.update();

function resize() {
  const w = view.clientWidth, h = view.clientHeight;
  renderer.setSize(w, h, false);
  camera.aspect = w / Math.max(h, 1);
  camera.updateProjectionMatrix();
}
new ResizeObserver(resize).observe(view);
resize();

function setBackground(hex) {
  renderer.setClearColor(new THREE.Color(hex), 1);
  $("background").value = hex;
}
setBackground(params.get("background") || meta.background || "#ffffff");

// -- frames: loaded on demand, a bounded least-recently-used set of SplatMeshes --------------------
const meshes = new Map(); // key -> {mesh, done, ready: Promise}
let shownKey = null, sinceShown = 0, wanted = null; // shown and last requested frame keys
function key(name, i) { return `${name}/${i}`; }
function load(name, i) {
  const k = key(name, i);
  let entry = meshes.get(k);
  if (entry) { meshes.delete(k); meshes.set(k, entry); return entry; }
  const mesh = new SplatMesh({ url: meta.sequences[name].frames[i] });
  mesh.visible = false;
  scene.add(mesh);
  state.loads += 1;
  entry = { mesh, done: false };
  entry.ready = mesh.initialized.then(() => { entry.done = true; return mesh; });
  meshes.set(k, entry);
  for (const [old, e] of meshes) {
    if (meshes.size <= MAX_MESHES) break;
    if (old === key(state.sequence, state.frame) || old === wanted || !e.done) continue;
    scene.remove(e.mesh);
    e.mesh.dispose();
    meshes.delete(old);
  }
  return entry;
}

async function show(name, i) {
  wanted = key(name, i);
  const entry = load(name, i);
  await entry.ready;
  if (wanted !== key(name, i)) return; // a later request won
  for (const [k, e] of meshes) e.mesh.visible = k === wanted;
  shownKey = wanted;
  sinceShown = 0;
  state.sequence = name;
  state.frame = i;
  state.drawn = null;
  const seq = meta.sequences[name];
  $("frame").max = String(seq.frames.length - 1);
  $("frame").value = String(i);
  $("label").textContent = `${i + 1} / ${seq.frames.length} · ${(i / seq.fps).toFixed(2)} s`;
  $("status").textContent = `${name} · ${seq.splats[i].toLocaleString()} Gaussians`;
}

// True once Spark's displayed splats come from `mesh` alone and are sorted: Spark gathers and
// sorts the visible meshes asynchronously, so a frame shows some renders after it became visible.
function sparkShows(mesh) {
  const mapping = spark.display && spark.display.mapping;
  if (!mapping) return true; // a Spark without these fields: fall back to counting frames
  const live = mapping.filter((m) => m.count > 0);
  return live.length === 1 && live[0].node === mesh && !spark.sorting && !spark.sortDirty;
}

// -- controls -----------------------------------------------------------------------------------
let playing = false, speed = 1, clock = 0;
const current = () => meta.sequences[state.sequence];
$("play").addEventListener("click", () => {
  playing = !playing;
  $("play").textContent = playing ? "Pause" : "Play";
  clock = state.frame / current().fps;
});
$("frame").addEventListener("input", (e) => {
  const i = Number(e.target.value);
  clock = i / current().fps;
  show(state.sequence, i);
});
$("speed").addEventListener("change", (e) => { speed = Number(e.target.value); });
$("background").addEventListener("input", (e) => setBackground(e.target.value));
if (names.length > 1) {
  $("x3-control").classList.remove("hidden");
  $("x3").addEventListener("change", (e) => {
    const t = state.frame / current().fps;
    const name = e.target.checked ? names[1] : names[0];
    const seq = meta.sequences[name];
    clock = t;
    show(name, Math.min(Math.round(t * seq.fps), seq.frames.length - 1));
  });
}

// -- loop ---------------------------------------------------------------------------------------
let last = performance.now();
renderer.setAnimationLoop((now) => {
  const dt = (now - last) / 1000;
  last = now;
  controls.update();
  if (playing && state.sequence) {
    const seq = current();
    clock += dt * speed;
    const target = Math.floor(clock * seq.fps + 1e-6) % seq.frames.length;
    if (target !== state.frame) {
      const entry = load(state.sequence, target);
      if (entry.done) show(state.sequence, target);
      else clock = state.frame / seq.fps; // hold the frame until the next one is loaded
    }
    for (let k = 1; k <= PREFETCH; k++) load(state.sequence, (state.frame + k) % seq.frames.length);
  }
  renderer.render(scene, camera);
  if (shownKey !== null && state.drawn === null && sparkShows(meshes.get(shownKey).mesh) && ++sinceShown >= DRAWN_AFTER) {
    state.drawn = { sequence: state.sequence, frame: state.frame };
  }
});

const first = params.get("sequence") && names.includes(params.get("sequence")) ? params.get("sequence") : names[0];
$("x3").checked = first !== names[0];
await show(first, 0);
state.ready = true;
