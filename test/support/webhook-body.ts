/**
 * A webhook body as Meta sends it: one entry for WABA `waba`, one `messages` change holding `value` (the keys in
 * Meta's order, so a pretty-printed body has Meta's lines).
 */
export function messagesWebhook(waba: string, value: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: waba, changes: [{ field: 'messages', value }] }],
  };
}

/** A body of WABA `waba` with one change of `field` (an account fact: `account_update`, `template_category_update`). */
export function accountWebhook(waba: string, field: string, value: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: waba, time: 1761955200, changes: [{ field, value }] }],
  };
}

/**
 * Meta's volume-tier statement for WABA `waba` (`account_update`, `VOLUME_BASED_PRICING_TIER_UPDATE`): utility in
 * India reaching tier `2:MAX` for 2025-11, but for `fields`.
 */
export function tierStatementWebhook(waba: string, fields: Record<string, unknown> = {}) {
  return accountWebhook(waba, 'account_update', {
    event: 'VOLUME_BASED_PRICING_TIER_UPDATE',
    volume_tier_info: {
      tier_update_time: 1761955200,
      pricing_category: 'UTILITY',
      tier: '2:MAX',
      effective_month: '2025-11',
      region: 'India',
      ...fields,
    },
  });
}

/**
 * A user's text message as Meta sends it when the user has a business-scoped id: WABA `waba`'s number
 * `business` (its phone_number_id) receives message `id` at `timestamp` (Unix seconds) from `number`, and Meta
 * gives the user's id `scopedId` beside it (`contacts[].user_id`, `from_user_id`): the webhook that pairs them.
 */
export function scopedIdPairingWebhook(pairing: {
  waba: string;
  business: string;
  number: string;
  scopedId: string;
  id: string;
  timestamp: string;
}) {
  const { waba, business, number, scopedId, id, timestamp } = pairing;
  return messagesWebhook(waba, {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: business.replace(/\D/g, '') || '1', phone_number_id: business },
    contacts: [{ profile: { name: 'x' }, wa_id: number, user_id: scopedId }],
    messages: [{ from: number, from_user_id: scopedId, id, timestamp, type: 'text', text: { body: 'hi' } }],
  });
}
