/** Reading data files, one way each: YAML/JSON validated by a zod schema, and CSV tables. */
export { loadDataFile, parseDataText, validateData } from './data-file';
export { columnIndex, parseTable, readTable, type Table } from './table';
