// Types of the BOS checkout SDK v1: the ES module `GET /sdk/v1/checkout.js` and the classic
// script `GET /sdk/v1/checkout.global.js` (the same API as `window.BOS`).

export type CheckoutMode = "inline" | "overlay" | "popup";

export type CheckoutEventType =
  | "loaded"
  | "confirmed"
  | "requires_action"
  | "completed"
  | "failed"
  | "closed"
  | "popup_blocked"
  | "token_refreshed"
  | "error";

export interface CheckoutEvent {
  type: CheckoutEventType;
  checkoutId: string;
  /** Present on page events (all but closed, popup_blocked, token_refreshed, error). */
  checkout_id?: string;
  /** `completed`: the subscription the checkout created. */
  subscription_id?: string | null;
  /** `loaded`, `confirmed`, `completed`: the checkout's or the confirm's status. */
  status?: string;
  amount_total?: number;
  currency?: string;
  is_free?: boolean;
  /** `failed` and `error`: a machine code and a sentence for a person. */
  code?: string;
  message?: string;
  /** `requires_action`: what the bank asked for (`use_stripe_sdk`: 3D Secure in the page). */
  action?: string;
  /** `popup_blocked`: where the checkout opened instead. */
  fallback?: "inline" | "overlay";
}

interface CommonOptions {
  /** The checkout session id (`cs_...`). */
  checkoutId: string;
  /** Default "inline". "popup" falls back to inline (with a container) or overlay when blocked. */
  mode?: CheckoutMode;
  /** Where the inline iframe goes (element or CSS selector); required for "inline". */
  container?: HTMLElement | string;
  /** Every event of the checkout. */
  onEvent?: (event: CheckoutEvent) => void;
  /** The BOS origin; defaults to the origin this script was loaded from. */
  baseUrl?: string;
  /** Accessible title of the iframe. Default "Checkout". */
  title?: string;
}

export interface SessionTokenOptions extends CommonOptions {
  /** A session token (`bos_session_...`) minted by the merchant's server for this user. */
  sessionToken: string;
  /** Called when the token is about to expire: resolve with a fresh one for the same user. */
  refreshSessionToken?: () => string | Promise<string>;
  clientSecret?: never;
}

export interface ClientSecretOptions extends CommonOptions {
  /** The checkout's client secret (`cs_..._secret_...`), returned once at creation. */
  clientSecret: string;
  sessionToken?: never;
  refreshSessionToken?: never;
}

export type CheckoutOptions = SessionTokenOptions | ClientSecretOptions;

export interface CheckoutHandle {
  readonly mode: CheckoutMode;
  /** The iframe (inline and overlay modes), or null in a popup. */
  readonly frame: HTMLIFrameElement | null;
  /** True once the handshake with the checkout page completed. */
  readonly connected: boolean;
  /** Remove the iframe/overlay (or close the popup); emits `closed`. */
  close(): void;
}

export function checkout(options: CheckoutOptions): CheckoutHandle;

declare const BOS: { checkout: typeof checkout; version: 1 };
export default BOS;

declare global {
  interface Window {
    BOS?: typeof BOS;
  }
}
