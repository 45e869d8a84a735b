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
