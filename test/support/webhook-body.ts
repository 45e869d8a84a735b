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
