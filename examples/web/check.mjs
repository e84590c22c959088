// Drive the page in a real headless Chromium (the system's, through playwright-core): wait for the model, run the
// given texts through the page's tokenizer and model, classify the first one through the UI, take a screenshot.
//
//   node check.mjs URL TEXTS.json SCREENSHOT.png [CHROMIUM]   -> one JSON line: ids, logits, ui, timings
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, textsFile, screenshot, executable = "/usr/bin/chromium"] = process.argv.slice(2);
const texts = JSON.parse(readFileSync(textsFile, "utf8"));
const browser = await chromium.launch({ executablePath: executable, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  const ready = await page.evaluate(() => window.edgebert.ready);
  const kit = await page.evaluate(async (texts) => {
    const out = [];
    for (const text of texts) {
      const { logits, windows, truncated } = await window.edgebert.read(text);
      out.push({ ids: await window.edgebert.ids(text), logits, windows: windows.length > 1 ? windows : undefined, truncated });
    }
    return out;
  }, texts);
  const latency = await page.evaluate(async () => {
    const time = async (text, n) => {
      const t = [];
      for (let i = 0; i < n; i++) t.push((await window.edgebert.classify(text)).ms);
      t.sort((a, b) => a - b);
      return t[Math.floor(t.length / 2)];
    };
    const short = "Shares fell sharply today.";
    const long = "word ".repeat(400);
    await time(short, 3);
    const [cls, word, sep] = await window.edgebert.ids("the");  // ids this vocabulary has, whatever its size
    const shape = async (n, reps) => {  // model only: [CLS] the the ... [SEP], n tokens
      const ids = [cls, ...Array(n - 2).fill(word), sep];
      await window.edgebert.logitsOfIds(ids);
      const t = [];
      for (let i = 0; i < reps; i++) {
        const s = performance.now();
        await window.edgebert.logitsOfIds(ids);
        t.push(performance.now() - s);
      }
      t.sort((a, b) => a - b);
      return t[Math.floor(t.length / 2)];
    };
    return {
      short_text_p50_ms: await time(short, 20),
      long_text_p50_ms: await time(long, 10),
      p50_1x16_ms: await shape(16, 30),
      p50_1x128_ms: await shape(128, 20),
    };
  });
  await page.fill("#text", texts[0]);
  await page.click("#go");
  await page.waitForSelector(".row.best");
  const ui = await page.evaluate(() => ({
    best: document.querySelector(".row.best .name").textContent,
    rows: document.querySelectorAll(".row").length,
    status: document.getElementById("status").textContent,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ ready, kit, latency, ui, errors, browser: browser.version() }));
} finally {
  await browser.close();
}
