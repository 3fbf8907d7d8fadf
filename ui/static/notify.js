// The job page's opt-in notice when a job ends. A bell toggle asks for the
// browser's permission (Notification.requestPermission) only when the user
// clicks it, and the choice is remembered for the server (localStorage).
// When a job the page saw running ends while the page is hidden (another
// tab, a minimised window), a Notification says its status and duration
// (format.js endNotice). A job that had already ended when the page opened
// notifies nothing.
//
// Browsers offer notifications to secure contexts only (https, or
// http://localhost): elsewhere the state is 'unsupported' and the page hides
// the bell. Everything the module touches (Notification, storage, document)
// comes from `env`, so that node tests drive it with fakes.

import { endNotice, isLive, statusIcon } from './format.js';

/** The localStorage key of the choice: "on", or absent. */
export const STORAGE_KEY = 'jobrun-notify';

export class EndNotifier {
  /**
   * @param {object} env
   * @param {typeof Notification} [env.Notification] absent where the browser offers none
   * @param {Storage} [env.storage] localStorage (may throw when storage is disabled)
   * @param {Document} env.document for visibilityState
   */
  constructor(env) {
    this.env = env;
    this.status = null; // the last status update() saw
    /** @type {boolean|undefined} the choice made on this page */
    this._choice = undefined;
  }

  /** @returns {'unsupported'|'blocked'|'on'|'off'} */
  get state() {
    const N = this.env.Notification;
    if (typeof N !== 'function') return 'unsupported';
    if (N.permission === 'denied') return 'blocked';
    return N.permission === 'granted' && this._wanted() ? 'on' : 'off';
  }

  /** Turns the notice on (asking for permission first) or off; returns the new state. */
  async toggle() {
    const s = this.state;
    if (s === 'on') {
      this._store(false);
      return 'off';
    }
    if (s !== 'off') return s;
    const N = this.env.Notification;
    if (N.permission !== 'granted') {
      let p = 'default';
      try { p = await N.requestPermission(); } catch { /* an old browser's callback form: no answer */ }
      if (p !== 'granted') return this.state;
    }
    this._store(true);
    return this.state;
  }

  /**
   * Takes each job state the page learns; shows the notice when a live job
   * ends while the page is hidden.
   * @param {object} job @param {number} now ms since the epoch
   * @returns {Notification|null} the notification shown
   */
  update(job, now) {
    const prev = this.status;
    this.status = job.status;
    if (!prev || !isLive(prev) || isLive(job.status)) return null;
    if (this.state !== 'on' || this.env.document.visibilityState !== 'hidden') return null;
    const { title, body } = endNotice(job, now);
    try {
      return new this.env.Notification(title, { body, tag: `jobrun-job-${job.id}`, icon: statusIcon(job.status) });
    } catch {
      return null; // Chrome on Android only notifies from a service worker
    }
  }

  /** The choice made on this page, else the remembered one. */
  _wanted() {
    if (this._choice !== undefined) return this._choice;
    try { return this.env.storage?.getItem(STORAGE_KEY) === 'on'; } catch { return false; }
  }

  _store(on) {
    this._choice = on;
    try {
      if (on) this.env.storage?.setItem(STORAGE_KEY, 'on');
      else this.env.storage?.removeItem(STORAGE_KEY);
    } catch { /* storage disabled: the choice lasts for this page only */ }
  }
}
