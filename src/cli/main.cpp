#include <cstdio>
int main() { std::puts("dmem"); return 0; }
