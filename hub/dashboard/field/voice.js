// A voice note from the phone's microphone (MediaRecorder). The hub stores Ogg/Opus, WebM,
// MP4/M4A, MP3 or WAV as sent; Chromium records WebM/Opus, Safari MP4.
const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a" };

export function voiceFilename(type) {
  return `voice.${EXTENSIONS[String(type).split(";")[0]] || "webm"}`;
}

export class VoiceRecorder {
  constructor({ maxBytes, onTick }) {
    this.maxBytes = maxBytes;
    this.onTick = onTick;
    this.recorder = null;
    this.stream = null;
  }

  get recording() {
    return this.recorder?.state === "recording";
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    this.chunks = [];
    this.size = 0;
    this.started = Date.now();
    this.recorder.ondataavailable = (ev) => {
      if (!ev.data.size) return;
      this.chunks.push(ev.data);
      this.size += ev.data.size;
      // A note over the hub's limit would be refused at the hub after waiting in the queue:
      // stop here, while the worker can still say it again, shorter.
      if (this.size >= this.maxBytes * 0.95 && this.recording) this.recorder.stop();
    };
    this.done = new Promise((resolve) => {
      this.recorder.onstop = () => {
        for (const track of this.stream.getTracks()) track.stop();
        const type = this.recorder.mimeType || mimeType || "audio/webm";
        resolve(new Blob(this.chunks, { type: type.split(";")[0] }));
      };
    });
    this.timer = setInterval(() => this.onTick((Date.now() - this.started) / 1000), 250);
    this.recorder.start(1000); // a chunk a second, so the size limit is checked as it grows
  }

  async stop() {
    clearInterval(this.timer);
    if (this.recording) this.recorder.stop();
    return this.done;
  }
}
