/** The part of daikon's (rii-mango/Daikon, MIT) API vitkit uses; the package ships no types. */
declare module 'daikon' {
  interface DaikonTag { value: unknown[] | null }
  interface DaikonImage {
    getRows(): number;
    getCols(): number;
    getBitsAllocated(): number;
    getBitsStored(): number;
    getPixelRepresentation(): number;
    getPhotometricInterpretation(): string | null;
    getNumberOfFrames(): number;
    getTransferSyntax(): string | null;
    getDataScaleSlope(): number | null;
    getDataScaleIntercept(): number | null;
    getWindowCenter(): number | null;
    getWindowWidth(): number | null;
    getModality(): string | null;
    hasPixelData(): boolean;
    getTag(group: number, element: number): DaikonTag | undefined;
    /** the pixel data, decompressed where the transfer syntax compresses it */
    getPixelDataBytes(): ArrayBuffer;
    littleEndian: boolean;
  }
  const daikon: {
    Series: { parseImage(data: DataView): DaikonImage | null };
    Parser: { new (): { parse(data: DataView): unknown; error: unknown } };
  };
  export default daikon;
}
