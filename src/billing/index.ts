/**
 * Billing and disclosure as pure functions of metered task usage (`TaskUsage`): usage summaries, bills in
 * integer fen from a price table, and the public disclosure report. No clock and no I/O but `loadPriceTable`.
 */
export * from './usage';
export * from './prices';
export * from './bill';
export * from './disclosure';
