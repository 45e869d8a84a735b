// Signed Meta status webhook bodies for the service's load test (bench table 3) and its ceiling (table 3b).

import {
  describeUser,
  describeWabas,
  Rng,
  type TrafficOptions,
  type WabaProfile,
} from './generate-traffic.js';

export interface SignedBody {
  body: string;
  signature: string;
  statuses: number;
}

/**
 * - `one`: one status per body, as Meta sends them — every status-carrying body in
 *   ../shared/fixtures/webhooks/ and every example in Meta's documentation holds exactly one — with an id of
 *   Meta's length and `conversation` and `pricing` objects: 390–620 bytes (median ≈ 575), where the
 *   fixtures' status bodies, compacted, are 388–788. The realistic shape: the issue's target is judged on it.
 * - `batched`: 1–50 statuses per body (17.7 on average), a heavy stress shape kept from earlier runs so that
 *   their figures stay comparable.
 */
export type BodyShape = 'one' | 'batched';

export const BODY_SHAPES: Record<BodyShape, string> = {
  one: 'one status per body, as Meta sends them',
  batched: '1–50 statuses per body, 17.7 on average',
};

const WORDS = ['sent', 'delivered', 'read'] as const;
const CATEGORIES = ['marketing', 'utility', 'authentication', 'service'] as const;
/** Meta's wamids are base64 of about 40 bytes: `wamid.` and 50–60 characters. */
const META_ID_LENGTH = 56;

/** Status webhook bodies with distinct message ids, signed like Meta's. Deterministic for a seed. */
export class WebhookBodies {
  private readonly rng: Rng;
  private readonly wabas: WabaProfile[];
  private readonly users: { phone: string; waba: number }[] = [];
  private counter = 0;
  statuses = 0;
  constructor(
    seed: number,
    private readonly runTag: string,
    private readonly shape: BodyShape,
  ) {
    this.rng = new Rng(seed);
    const options: TrafficOptions = { seed, users: 5_000 };
    this.wabas = describeWabas(options);
    for (let index = 0; index < 5_000; index++) {
      const user = describeUser(options, index);
      if (user.country !== null) this.users.push({ phone: user.phone, waba: user.wabaIndex });
    }
  }

  nextSigned(sign: (body: string, secret: string) => string, secret: string): SignedBody {
    const before = this.statuses;
    const body = this.next();
    return { body, signature: sign(body, secret), statuses: this.statuses - before };
  }

  next(): string {
    const rng = this.rng;
    const user = rng.pick(this.users);
    const waba = this.wabas[user.waba] as WabaProfile;
    const number = rng.pick(waba.numbers);
    const count = this.shape === 'one' ? 1 : 1 + Math.floor(50 * rng.next() ** 2);
    const baseSecond = 1_759_300_000 + rng.int(30 * 86_400);
    const statuses: string[] = [];
    for (let i = 0; i < count; i++) {
      // One status per body: the bodies of one run walk sent → delivered → read; batched: within the body.
      const status = WORDS[(this.shape === 'one' ? this.counter : i) % 3] as string;
      const id = this.messageId(this.counter++);
      const category = rng.pick(CATEGORIES);
      const pricing =
        status === 'read'
          ? ''
          : `,"pricing":{"billable":${category !== 'service'},"pricing_model":"PMP","category":"${category}","type":"${category === 'service' ? 'free_customer_service' : 'regular'}"}`;
      // Meta's bodies carry a conversation object beside pricing (10 of the 13 status fixtures, PMP ones too).
      const conversation =
        this.shape === 'one' && status !== 'read'
          ? `,"conversation":{"id":"${this.conversationId()}",${status === 'sent' ? `"expiration_timestamp":"${baseSecond + i + 86_400}",` : ''}"origin":{"type":"${category}"}}`
          : '';
      statuses.push(
        `{"id":"${id}","status":"${status}","timestamp":"${baseSecond + i}","recipient_id":"${rng.pick(this.users).phone}"${conversation}${pricing}}`,
      );
    }
    this.statuses += count;
    return (
      `{"object":"whatsapp_business_account","entry":[{"id":"${waba.waba}","changes":[{"field":"messages","value":` +
      `{"messaging_product":"whatsapp","metadata":{"display_phone_number":"${number.displayPhoneNumber}",` +
      `"phone_number_id":"${number.phoneNumberId}"},"statuses":[${statuses.join(',')}]}}]}]}`
    );
  }

  /** 32 hex digits, as Meta's conversation ids. */
  private conversationId(): string {
    let id = '';
    for (let i = 0; i < 4; i++)
      id += this.rng
        .int(2 ** 32)
        .toString(16)
        .padStart(8, '0');
    return id;
  }

  private messageId(n: number): string {
    const id = `bench${this.runTag}${n.toString(36)}`;
    return this.shape === 'one' ? `wamid.${id.padStart(META_ID_LENGTH, 'HBgL')}` : `wamid.${id}`;
  }
}
