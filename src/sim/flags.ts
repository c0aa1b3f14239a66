/** Parsers of the simulator's command-line numbers (commander's argParser): a bad value is refused with the flag's name. */
import { InvalidArgumentError } from 'commander';

/** A finite number, at least `min`. */
export const number = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number ≥ ${min}`);
  return n;
};

/** A whole number, 0 or more. */
export const count = (name: string) => (v: string) => {
  const n = number(name, 0)(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number`);
  return n;
};

/** A whole number, 1 or more. */
export const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};
