/** The headers a delayed message carries in the delay log, and, once moved, in its topic. */

/** Its wall-clock due time (ms since 1970), as the publisher asked. */
export const DELIVER_AT_HEADER = 'ferry-deliver-at';
/** On the moved copy: its offset in the delay log, by which a move after the last checkpoint is found again. */
export const DELAY_OFFSET_HEADER = 'ferry-delay-offset';
/** The partition chosen at publish (the reply named it); dropped from the moved copy. */
export const PARTITION_HEADER = 'ferry-delay-partition';
