namespace Lockstep;

/// <summary>
/// Zero padding on each side of an input plane, in ONNX's order (begin before end): rows above (top), columns to the
/// left, rows below (bottom), columns to the right. The notes' P is the symmetric case, <see cref="Symmetric"/>.
/// </summary>
public readonly record struct Padding2d(int Top, int Left, int Bottom, int Right)
{
    /// <summary>P_h rows above and below, P_w columns left and right.</summary>
    public static Padding2d Symmetric(int padH, int padW) => new(padH, padW, padH, padW);

    public bool IsSymmetric => Top == Bottom && Left == Right;

    public bool IsZero => Top == 0 && Left == 0 && Bottom == 0 && Right == 0;

    public override string ToString() => IsSymmetric ? $"{Top}x{Left}" : $"t{Top} l{Left} b{Bottom} r{Right}";
}
